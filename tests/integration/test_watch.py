"""`devenv watch` on the real engine with the real backend binary, on a copy of the backend:
saves are served and checked without building an image, a broken save leaves the previous
build serving, a newer save cancels a running build, and Ctrl-C (or SIGTERM) at any point of a
cycle ends watching at once and leaves a healthy stack that `up` keeps."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from devenv.runtime.base import LABEL_SOURCE_PATH
from tests.integration.conftest import Stack
from tests.integration.test_backend_sources import (
    _copies_env,
    _copy_backend,
    _one_line,
    _profile,
    _workspace_copy,
    built_images,
    copies_target,
)

__all__ = ["built_images", "copies_target"]  # fixtures this module uses

READY = 900.0  # the first up builds the copy's image; the first watch build its own crates
CYCLE = 300.0
VERSION_LINE = re.compile(r'"api_version": VERSION,.*')


class Watching:
    """`devenv watch --json` running in the background: its cycles as they come."""

    def __init__(self, stack: Stack, profile: Path, log: Path, **env: str) -> None:
        self.log = log
        self._err = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devenv", "watch", "--json", "--profile", str(profile)],
            cwd=stack.root,
            env=stack.env(**env),
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
        )
        self.cycles: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.cycles.put(line)

    @property
    def said(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def wait_said(self, text: str, *, after: int = 0, timeout: float = CYCLE) -> int:
        """Poll the progress lines (stderr) until `text` appears after `after`."""
        deadline = time.monotonic() + timeout
        while (at := self.said.find(text, after)) < 0:
            assert self.proc.poll() is None, f"watch exited:\n{self.said}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout:.0f} s:\n{self.said}"
            time.sleep(0.05)  # polling a file another process writes
        return at + len(text)

    def cycle(self, timeout: float = CYCLE) -> dict[str, Any]:
        try:
            line = self.cycles.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no cycle within {timeout:.0f} s:\n{self.said}")
        data: dict[str, Any] = json.loads(line)
        return data

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; killed only if it does not end in a minute."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._err.close()
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def watching() -> Iterator[Callable[..., Watching]]:
    started: list[Watching] = []

    def start(stack: Stack, profile: Path, log: Path, **env: str) -> Watching:
        started.append(Watching(stack, profile, log, **env))
        return started[-1]

    yield start
    for w in started:  # before the stacks are destroyed (make_stack was requested first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.stop()


def _source_images(source: Path) -> set[str]:
    engine = docker.from_env(version="auto")
    found = engine.images.list(filters={"label": f"{LABEL_SOURCE_PATH}={source.resolve()}"})
    return {image.id for image in found}


def _mark(routes: Path, marker: str) -> None:
    """The one-line handler change: /version carries `watch_marker`."""
    text = routes.read_text(encoding="utf-8")
    line = f'"api_version": VERSION, "watch_marker": "{marker}",'
    routes.write_text(VERSION_LINE.sub(line, text, count=1), encoding="utf-8")


def _served_marker(stack: Stack) -> str | None:
    answer = httpx.get(stack.backend_url() + "/version", timeout=10)
    assert answer.status_code == 200
    marker = answer.json().get("watch_marker")
    return str(marker) if marker is not None else None


def _served(cycle: dict[str, Any]) -> None:
    assert cycle["outcome"] == "served", cycle
    assert cycle["ok"] is True, cycle
    assert cycle["checks"]["failed"] == 0, cycle
    assert cycle["checks"]["passed"] == cycle["checks"]["total"] > 10, cycle


def test_saves_are_served_and_checked_without_an_image(
    built_images: None,
    make_stack: Callable[..., Stack],
    watching: Callable[..., Watching],
    tmp_path: Path,
    copies_target: Path,
) -> None:
    copy = _copy_backend(tmp_path / "copy")
    routes = copy / "src" / "routes.rs"
    original = routes.read_text(encoding="utf-8")
    profile = _profile(tmp_path / "copy.toml", '[services.backend]\ncontext = "copy"\n')
    stack = make_stack(**_copies_env(copies_target))

    # Nothing runs: watch brings the stack up first (building the copy's image), then watches.
    w = watching(stack, profile, tmp_path / "watch.log")
    w.wait_said("[watch] ready:", timeout=READY)
    images = _source_images(copy)
    assert len(images) == 1
    backend = stack.container("backend")
    image_id = backend.image.id
    handoff = stack.root / ".devenv" / stack.project / "watch.json"

    # (1) a handler change is served by the same container and checked
    _mark(routes, "one")
    cycle = w.cycle()
    _served(cycle)
    assert cycle["changed"] == ["copy/src/routes.rs"] or cycle["changed"][0].endswith(
        "copy/src/routes.rs"
    )
    assert _served_marker(stack) == "one"
    assert stack.container("backend").id == backend.id
    handed = json.loads(handoff.read_text())
    assert handed["ok"] is True
    assert handed["pid"] == w.proc.pid
    assert set(handed) == {"schema_version", "pid", "time", "changed", "build_seconds",
                           "restart_seconds", "checks", "ok", "error"}  # fmt: skip

    # (2) a syntax error: the first error with file:line; the previous build keeps serving
    _mark(routes, "two")
    routes.write_text(
        routes.read_text().replace("pub async fn root()", "pub async fn root( -> {}\nfn x()"),
        encoding="utf-8",
    )
    cycle = w.cycle()
    assert cycle["outcome"] == "build-failed", cycle
    assert re.search(r"at src/routes\.rs:\d+:\d+$", cycle["error"]), cycle["error"]
    assert any("routes.rs" in line for line in cycle["details"]), cycle["details"]
    assert _served_marker(stack) == "one"
    checked = stack.cli("check", "--profile", str(profile))
    assert "0 failed" in checked.stdout
    assert json.loads(handoff.read_text())["ok"] is False

    # (3) fixing it serves the fixed source
    routes.write_text(original, encoding="utf-8")
    _mark(routes, "three")
    _served(w.cycle())
    assert _served_marker(stack) == "three"

    # (4) a save during a build cancels that build; the newer save is what is served
    seen = len(w.said)
    _mark(routes, "four")
    w.wait_said("changed: cargo build", after=seen)
    _mark(routes, "five")
    cycle = w.cycle()
    _served(cycle)
    assert cycle["cancelled"] >= 1, cycle
    assert "saved again during the build" in w.said[seen:]
    assert _served_marker(stack) == "five"

    # (5) a backend that crashes at start is reported with its last log lines ...
    lib = copy / "src" / "lib.rs"
    lib_source = lib.read_text(encoding="utf-8")
    lib.write_text(
        lib_source.replace(
            "pub async fn run() -> ExitCode {",
            'pub async fn run() -> ExitCode {\n    panic!("watch test crash");',
            1,
        ),
        encoding="utf-8",
    )
    cycle = w.cycle()
    assert cycle["outcome"] == "crashed", cycle
    assert "exited with code" in cycle["error"]
    assert any("watch test crash" in line for line in cycle["details"]), cycle["details"]
    # ... and the next good save brings it back
    lib.write_text(lib_source, encoding="utf-8")
    _served(w.cycle())
    assert _served_marker(stack) == "five"

    # (6) a new migration: the restart applies it, the cycle says so
    (copy / "migrations" / "20260101000003_watch_notes.sql").write_text(
        "CREATE TABLE watch_notes (id bigint PRIMARY KEY);\n", encoding="utf-8"
    )
    cycle = w.cycle()
    _served(cycle)
    assert cycle["applied"] == ["20260101000003 watch notes"]

    # (7) Ctrl-C: watching ends, the stack stays healthy, and `up` keeps it as it is
    assert w.stop() == 0
    assert "[watch] stopped after 7 cycle(s)" in w.said
    assert not handoff.exists()
    assert all(s["healthy"] for s in stack.status("--profile", str(profile))["services"])
    assert _served_marker(stack) == "five"
    again = json.loads(stack.cli("up", "--json", "--profile", str(profile)).stdout)
    assert again["noop"] is True, again["plan"]
    kept = next(s for s in again["plan"] if s["target"] == "backend" and s["kind"] == "keep")
    assert "build from devenv watch" in kept["cause"]
    assert stack.container("backend").id == backend.id
    assert _served_marker(stack) == "five"

    # No image was built for this source during the whole watch, nor by the `up` after it.
    assert _source_images(copy) == images
    assert stack.container("backend").image.id == image_id


def _processes_in(directory: Path) -> list[str]:
    """The command lines of the processes working in `directory` (cargo, rustc)."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).is_relative_to(directory):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def _healthy(stack: Stack, profile: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(s["healthy"] for s in stack.status("--profile", str(profile))["services"]):
        assert time.monotonic() < deadline, f"the stack is not healthy after {timeout:.0f} s"


INTERRUPTS = [
    # (where the cycle pauses, the signal, served after it, what watch says it stopped)
    ("build", signal.SIGINT, False, "the build of src/routes.rs is cancelled; the backend was "
     "not touched"),
    ("copy", signal.SIGINT, True, "the backend restarted on the build of src/routes.rs, not yet "
     "checked"),  # the binary is in the container: the restart and the record finish first
    ("checks", signal.SIGINT, True, "the backend serves the build of src/routes.rs; its route "
     "checks were cut short"),  # a check's request is on its way
    ("health", signal.SIGTERM, True, "the backend restarted on the build of src/routes.rs, not "
     "yet checked"),  # as a supervisor stops it
]  # fmt: skip


@pytest.mark.timeout(1800)
def test_an_interrupt_anywhere_in_a_cycle_ends_watching_and_the_stack_stays_healthy(
    built_images: None,
    make_stack: Callable[..., Stack],
    watching: Callable[..., Watching],
    tmp_path: Path,
    copies_target: Path,
) -> None:
    """One watch per point: the cycle pauses there (the test hook), the signal comes, watch
    exits 0 within 5 s without reporting a cycle, the backend is healthy on the old build or
    the new one, and `up` agrees (the serving record and the container agree)."""
    copy = _copy_backend(tmp_path / "copy")
    routes = copy / "src" / "routes.rs"
    profile = _profile(tmp_path / "copy.toml", '[services.backend]\ncontext = "copy"\n')
    stack = make_stack(**_copies_env(copies_target))
    record = stack.root / ".devenv" / stack.project / "serving.json"
    serving: str | None = None  # the marker the backend serves: none, the image's source
    for point, sig, served, stopped in INTERRUPTS:
        before = routes.read_text(encoding="utf-8")
        w = watching(stack, profile, tmp_path / f"watch-{point}.log",
                     DEVENV_TEST_WATCH_PAUSE=point)  # fmt: skip
        w.wait_said("[watch] ready:", timeout=READY)
        seen = len(w.said)
        _mark(routes, point)
        w.wait_said(f"[watch] paused at {point}", after=seen)
        w.proc.send_signal(sig)
        try:
            code = w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"watch still runs 5 s after {sig.name} at {point}:\n{w.said[seen:]}")
        said = w.said[seen:]
        assert code == 0, said
        assert f"[watch] stopped by {sig.name}: {stopped}" in said, said
        assert "[watch] stopped after 0 cycle(s)" in said, said
        assert "Traceback" not in said
        assert w.cycles.empty(), "an interrupted cycle was reported"
        assert not (stack.root / ".devenv" / stack.project / "watch.json").exists()
        assert _processes_in(copy) == []  # no cargo or rustc left building

        _healthy(stack, profile)
        if served:
            serving = point
        else:
            routes.write_text(before, encoding="utf-8")  # the checkout as the backend runs it
        assert _served_marker(stack) == serving
        assert record.exists() is (serving is not None)
        again = json.loads(stack.cli("up", "--json", "--profile", str(profile)).stdout)
        assert again["noop"] is True, (point, again["plan"])
        assert _served_marker(stack) == serving


def test_a_workspace_checkout_is_watched_at_its_crate(
    built_images: None,
    make_stack: Callable[..., Stack],
    watching: Callable[..., Watching],
    tmp_path: Path,
    copies_target: Path,
) -> None:
    checkout = _workspace_copy(tmp_path / "app")
    profile = _profile(tmp_path / "app.toml", '[services.backend]\ncontext = "app"\n')
    stack = make_stack(**_copies_env(copies_target))
    w = watching(stack, profile, tmp_path / "watch.log")
    w.wait_said("[watch] ready:", timeout=READY)
    assert "crates/" in w.said
    images = _source_images(checkout)
    _mark(checkout / "crates" / "api" / "src" / "routes.rs", "crate")
    cycle = w.cycle()
    _served(cycle)
    assert cycle["changed"][0].endswith("app/crates/api/src/routes.rs")
    assert _served_marker(stack) == "crate"
    assert w.stop() == 0
    assert _source_images(checkout) == images


def test_an_external_backend_or_an_image_is_refused_with_one_line(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack()
    image = _profile(
        tmp_path / "image.toml", '[services.backend]\nimage = "devenv-standin/backend:dev"\n'
    )
    line = _one_line(stack.cli("watch", "--profile", str(image), check=False), 3)
    assert "services.backend.image" in line
    assert "no checkout for devenv watch to rebuild" in line
    external = _profile(
        tmp_path / "external.toml",
        '[services.backend]\nprovider = "external"\nurl = "http://127.0.0.1:9"\n',
    )
    line = _one_line(stack.cli("watch", "--profile", str(external), check=False), 3)
    assert "binds the backend to an external provider" in line
    assert stack.containers() == []
