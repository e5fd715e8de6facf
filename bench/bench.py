"""`make bench`: devenv against a docker-compose v1 baseline on the same stand-in images."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devenv.probes.base import S3Client

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMPOSE_FILE = HERE / "compose.bench.yaml"
IMAGES = (
    "devenv-standin/postgres:15",
    "devenv-standin/objectstore:1",
    "devenv-standin/backend:dev",
)
EDIT_FILE = Path("src") / "routes.rs"
READY_DEADLINE = 180.0
E2E_POLL = 2.0  # the Ignition team's e2e script: `until curl -f .../health; do sleep 2; done`
FAST_POLL = 0.05
QUICK_SAMPLES = 5  # per rep, of the sub-second rows and compose's no-op `up -d`
WATCH_MIN_REPS = 5  # the watch rows repeat the same change at least this often


class BenchError(Exception):
    """A step of the benchmark failed; the message says which step and why."""

    def __init__(self, message: str, *, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


PORT_CONFLICT = 6  # devenv's exit code when a port it chose is taken before it could bind
ATTEMPTS = 3


def note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- running commands --------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    maxrss_mb: float  # peak resident set of the child (and any child it waited for)


def run(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 900.0,
    check: bool = True,
    what: str | None = None,
) -> Proc:
    """Run `cmd` to completion; wall time from spawn to exit, and its own peak memory."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Proc(
            seconds=seconds,
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            maxrss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
        )
    if check and result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip()).splitlines()[-8:]
        raise BenchError(
            f"`{what or ' '.join(cmd[:4])}` exited {result.returncode}:\n    "
            + "\n    ".join(lines),
            returncode=result.returncode,
        )
    return result


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (held open together so that they are distinct)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def health_ok(url: str) -> bool:
    try:
        with _LOOPBACK.open(url, timeout=2) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


def wait_health(url: str, poll: float, *, deadline: float = READY_DEADLINE) -> None:
    """The host-side wait of an e2e script: try, then sleep `poll`, until 200 or the deadline."""
    give_up = time.monotonic() + deadline
    while not health_ok(url):
        if time.monotonic() > give_up:
            raise BenchError(f"{url} did not answer 200 within {deadline:.0f}s")
        time.sleep(poll)


# --- the two systems under test ----------------------------------------------------------


def devenv_cmd() -> list[str]:
    script = Path(sys.executable).parent / "devenv"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "devenv"]


@dataclass
class DevenvProject:
    name: str
    root: Path = REPO
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DEVENV_PROFILE",)}
        env.update(DEVENV_PROJECT=self.name, DEVENV_ROOT=str(self.root), **self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> Proc:
        return run(
            [*devenv_cmd(), *args],
            env=self.env(),
            cwd=self.root,
            check=check,
            what=f"devenv {' '.join(args)} (project {self.name})",
        )

    def destroy(self) -> None:
        self.cli("down", "--volumes", "--yes", check=False)
        label = f"label=io.devenv.project={self.name}"
        leftovers = run(["docker", "ps", "-aq", "--filter", label], check=False).stdout.split()
        if leftovers:
            run(["docker", "rm", "-f", *leftovers], check=False)
        volumes = run(["docker", "volume", "ls", "-q", "--filter", label], check=False)
        if volumes.stdout.split():
            run(["docker", "volume", "rm", "-f", *volumes.stdout.split()], check=False)
        shutil.rmtree(self.root / ".devenv" / self.name, ignore_errors=True)
        from devenv.snapshot.store import Store  # `up` keeps a golden snapshot in the cache

        shutil.rmtree(Store(self.name).root, ignore_errors=True)


@dataclass
class ComposeProject:
    """A docker-compose v1 project on compose.bench.yaml, with ports and credentials of its own."""

    name: str
    poll: float
    ports: list[int] = field(default_factory=lambda: free_ports(3))
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    access_key: str = field(default_factory=lambda: "bench" + secrets.token_hex(6))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def env(self) -> dict[str, str]:
        pg, s3, backend = self.ports
        return dict(
            os.environ,
            BENCH_PG_PORT=str(pg),
            BENCH_S3_PORT=str(s3),
            BENCH_BACKEND_PORT=str(backend),
            BENCH_PG_PASSWORD=self.password,
            BENCH_S3_KEY=self.access_key,
            BENCH_S3_SECRET=self.secret_key,
        )

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[2]}/health"

    def compose(self, *args: str, check: bool = True) -> Proc:
        return run(
            ["docker-compose", "-p", self.name, "-f", str(COMPOSE_FILE), *args],
            env=self.env(),
            cwd=HERE,
            check=check,
            what=f"docker-compose {' '.join(args)} (project {self.name})",
        )

    def up_until_healthy(self) -> float:
        """`docker-compose up -d`, then the host-side /health wait: the e2e script's timing."""
        start = time.perf_counter()
        try:
            self.compose("up", "-d")
        except BenchError as exc:
            raise BenchError(f"{exc}\n{self.diagnosis()}") from None
        wait_health(self.health_url, self.poll)
        return time.perf_counter() - start

    def diagnosis(self) -> str:
        """The containers' states and last log lines, for a baseline that did not come up."""
        ps = self.compose("ps", check=False).stdout
        logs = self.compose("logs", "--tail", "15", "--no-color", check=False).stdout
        return f"{ps}\n{logs}"

    def destroy(self) -> None:
        self.compose("down", "-v", "--remove-orphans", check=False)


# --- results -----------------------------------------------------------------------------


@dataclass
class Series:
    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def text(self, unit: str = "s", digits: int = 2) -> str:
        if not self.samples:
            return "-"
        lo, mid, hi = min(self.samples), self.median, max(self.samples)
        return f"{lo:.{digits}f} / {mid:.{digits}f} / {hi:.{digits}f} {unit}"


@dataclass
class Row:
    name: str
    devenv: Series
    baseline_name: str = ""
    baseline: Series | None = None
    target: str = ""
    passed: Callable[[Row], bool] | None = None
    unit: str = "s"

    def ratio(self) -> str:
        if self.baseline is None or not self.baseline.samples or not self.devenv.samples:
            return ""
        return f"{self.devenv.median / self.baseline.median:.2f}x"

    def verdict(self) -> str:
        if self.passed is None or not self.devenv.samples:
            return ""
        if self.baseline is not None and not self.baseline.samples:
            return ""
        return "pass" if self.passed(self) else "MISS"


def under(limit: float) -> Callable[[Row], bool]:
    return lambda row: row.devenv.median < limit


def at_most(limit: float) -> Callable[[Row], bool]:
    return lambda row: row.devenv.median <= limit


def at_most_times_baseline(factor: float) -> Callable[[Row], bool]:
    return lambda row: (
        row.baseline is not None and row.devenv.median <= factor * row.baseline.median
    )


def within_baseline_plus(extra: float) -> Callable[[Row], bool]:
    return lambda row: row.baseline is not None and row.devenv.median < row.baseline.median + extra


def at_most_baseline_plus(extra: float) -> Callable[[Row], bool]:
    return lambda row: row.baseline is not None and row.devenv.median <= row.baseline.median + extra


@dataclass
class Results:
    cold: Series = field(default_factory=Series)
    cold_compose: Series = field(default_factory=Series)
    cold_compose_fast: Series = field(default_factory=Series)
    after_down: Series = field(default_factory=Series)
    after_down_compose: Series = field(default_factory=Series)
    after_down_compose_fast: Series = field(default_factory=Series)
    warm: Series = field(default_factory=Series)
    warm_compose: Series = field(default_factory=Series)
    status: Series = field(default_factory=Series)
    help: Series = field(default_factory=Series)
    check: Series = field(default_factory=Series)
    edit: Series = field(default_factory=Series)
    cargo: Series = field(default_factory=Series)
    memory: Series = field(default_factory=Series)
    snapshot_save: Series = field(default_factory=Series)
    snapshot_restore: Series = field(default_factory=Series)
    reset: Series = field(default_factory=Series)
    test_database: Series = field(default_factory=Series)
    watch: Series = field(default_factory=Series)
    watch_cargo: Series = field(default_factory=Series)
    watch_up: Series = field(default_factory=Series)
    watch_images: Series = field(default_factory=Series)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[Row]:
        compose = f"docker-compose, {E2E_POLL:.0f} s poll"
        fast = f"docker-compose, {FAST_POLL * 1000:.0f} ms poll"
        return [
            Row("cold up", self.cold, compose, self.cold_compose, "<= 0.5x compose",
                at_most_times_baseline(0.5)),
            Row("cold up (fast poll)", self.cold, fast, self.cold_compose_fast),
            Row("up after down", self.after_down, compose, self.after_down_compose, "< 1.0 s",
                under(1.0)),
            Row("up after down (fast poll)", self.after_down, fast, self.after_down_compose_fast),
            Row("warm up", self.warm, "docker-compose up -d", self.warm_compose,
                "<= 0.6x compose up -d", at_most_times_baseline(0.6)),
            Row("status --json", self.status, "docker-compose up -d", self.warm_compose,
                "<= 0.6x compose up -d", at_most_times_baseline(0.6)),
            Row("--help", self.help, target="< 0.25 s", passed=under(0.25)),
            Row("check", self.check, target="< 1 s", passed=under(1.0)),
            Row("backend edit loop", self.edit, "cargo build --release alone", self.cargo,
                "< cargo + 3 s", within_baseline_plus(3.0)),
            Row("peak memory (devenv)", self.memory, target="< 120 MB", passed=under(120.0),
                unit="MB"),
            *self.snapshot_rows(),
            *self.watch_rows(),
        ]  # fmt: skip

    def snapshot_rows(self) -> list[Row]:
        data = f"{SNAPSHOT_MB} MB rows, {SNAPSHOT_OBJECTS} objects"
        return [
            Row(f"snapshot save ({data})", self.snapshot_save),
            Row(f"snapshot restore ({data}), until probes pass", self.snapshot_restore,
                target="<= 2 s", passed=at_most(2.0)),
            Row("reset to golden, until probes pass", self.reset, target="<= 2 s",
                passed=at_most(2.0)),
            Row("devenv_database per test (setup + teardown)", self.test_database,
                target="<= 150 ms", passed=at_most(150.0), unit="ms"),
        ]  # fmt: skip

    def watch_rows(self) -> list[Row]:
        return [
            Row("watch: save to checks passing", self.watch, "cargo build alone, same change",
                self.watch_cargo, "<= cargo + 0.7 s", at_most_baseline_plus(0.7)),
            Row("watch against the up edit loop", self.watch, "devenv up, same change",
                self.watch_up, ">= 3x faster", at_most_times_baseline(1 / 3)),
            Row("images built during watch", self.watch_images, target="0", passed=under(0.5),
                unit="images"),
        ]  # fmt: skip


def render(rows: Sequence[Row]) -> str:
    table = [("measure", "devenv min / med / max", "baseline", "min / med / max", "ratio",
              "target", "result")]  # fmt: skip
    for r in rows:
        digits = 0 if r.unit in ("MB", "ms", "images") else 2
        table.append(
            (
                r.name,
                r.devenv.text(r.unit, digits),
                r.baseline_name,
                r.baseline.text(r.unit, digits) if r.baseline is not None else "",
                r.ratio(),
                r.target,
                r.verdict(),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in table]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- the scenarios -----------------------------------------------------------------------


def preflight(*, compose: bool = True) -> None:
    if shutil.which("docker") is None:
        raise BenchError("the docker CLI is not on PATH")
    if run(["docker", "info"], check=False, timeout=60).returncode != 0:
        raise BenchError("the Docker engine is not reachable (`docker info` failed)")
    if compose and shutil.which("docker-compose") is None:
        raise BenchError("docker-compose (v1) is not on PATH: it is the baseline of this bench")
    missing = [
        ref for ref in IMAGES if run(["docker", "image", "inspect", ref], check=False).returncode
    ]
    if missing:
        raise BenchError(
            f"missing image(s): {', '.join(missing)}; run `make up` (or `devenv images build`) "
            "first so that both systems start from the same images"
        )
    # The backend image's identity includes its checkout: a build made from another clone
    # does not serve this one. Build what is missing now, so no timed `up` builds.
    built = run([*devenv_cmd(), "images", "build"], cwd=REPO, check=False, timeout=1800)
    if built.returncode != 0:
        raise BenchError(f"`devenv images build` failed:\n{built.stderr[-800:]}")


def devenv_rep(tag: str, rep: int, res: Results) -> None:
    """Cold up, down, up after down, warm up, then the read-only commands on the healthy stack.

    Other stacks on this machine may take a port between devenv's choice and its bind (exit
    6); such a repetition is discarded and run again on a fresh project."""
    for attempt in range(ATTEMPTS):
        try:
            _devenv_rep(f"{tag}-d{rep}-{attempt}", rep, res)
            return
        except BenchError as exc:
            if exc.returncode != PORT_CONFLICT or attempt == ATTEMPTS - 1:
                raise
            note(f"rep {rep + 1} devenv: a port was taken by another stack meanwhile; again")


def _devenv_rep(name: str, rep: int, res: Results) -> None:
    project = DevenvProject(name)
    try:
        cold = project.cli("up")
        project.cli("down")
        after = project.cli("up")
        warm = [project.cli("up", "--json") for _ in range(QUICK_SAMPLES)]
        for w in warm:
            if '"noop": true' not in w.stdout:
                raise BenchError(f"a warm `devenv up` was not a no-op:\n{w.stdout[:800]}")
        status = [project.cli("status", "--json") for _ in range(QUICK_SAMPLES)]
        for st in status:
            if st.stdout.count('"healthy": true') != 3:
                raise BenchError(f"`devenv status` shows not three healthy services:\n{st.stdout}")
        helped = [project.cli("--help") for _ in range(QUICK_SAMPLES)]
        check = project.cli("check")
    finally:
        project.destroy()
    peak = max(r.maxrss_mb for r in (cold, after, *warm, *status, check))
    for series, runs in (
        (res.cold, [cold]),
        (res.after_down, [after]),
        (res.warm, warm),
        (res.status, status),
        (res.help, helped),
        (res.check, [check]),
    ):
        for r in runs:
            series.add(r.seconds)
    res.memory.add(peak)

    def mid(runs: list[Proc]) -> float:
        return statistics.median(r.seconds for r in runs)

    note(
        f"rep {rep + 1} devenv: cold {cold.seconds:.2f}s, after down {after.seconds:.2f}s, "
        f"warm {mid(warm):.2f}s, status {mid(status):.2f}s, help {mid(helped):.2f}s "
        f"(medians of {QUICK_SAMPLES}), check {check.seconds:.2f}s, peak {peak:.0f} MB"
    )


def compose_rep(tag: str, rep: int, res: Results, *, poll: float) -> None:
    fast = poll < E2E_POLL
    project = ComposeProject(f"{tag}-{'f' if fast else 'c'}{rep}", poll=poll)
    try:
        cold = project.up_until_healthy()
        (res.cold_compose_fast if fast else res.cold_compose).add(cold)
        project.compose("down")
        again = project.up_until_healthy()
        (res.after_down_compose_fast if fast else res.after_down_compose).add(again)
        if not fast:
            try:
                for _ in range(QUICK_SAMPLES):
                    res.warm_compose.add(project.compose("up", "-d").seconds)
            except BenchError as exc:
                raise BenchError(f"{exc}\n{project.diagnosis()}") from None
        note(f"rep {rep + 1} docker-compose ({poll:g} s poll): cold {cold:.2f}s, after down "
             f"{again:.2f}s")  # fmt: skip
    finally:
        project.destroy()


def copy_for_edits(dest: Path) -> Path:
    """A project root of its own: the backend copied (so edits stay out of the checkout),
    the image recipes and profiles shared or copied as the integration fixtures do."""
    root = dest / "root"
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / "compose" / "compose.yaml", root / "compose" / "compose.yaml")
    (root / "compose" / "images").symlink_to(REPO / "compose" / "images")
    shutil.copytree(REPO / "profiles", root / "profiles")
    shutil.copytree(REPO / "contracts", root / "contracts")  # what watch checks
    shutil.copytree(REPO / "backend", root / "backend", ignore=shutil.ignore_patterns("target"))
    return root


def seed_target_dir(target: Path) -> None:
    """Start from a copy of the shared release build so only the backend crate itself compiles."""
    from devenv.images.build import cargo_target_dir

    shared = cargo_target_dir(REPO / "backend", REPO / "backend") / "release"
    target.mkdir(parents=True)
    if shared.is_dir():
        run(["cp", "-a", str(shared), str(target / "release")], what="copy the cargo cache")


@dataclass
class Copy:
    """The reference backend copied for edits, with its own cargo target dir and project."""

    backend: Path
    target: Path
    project: DevenvProject

    @property
    def source(self) -> Path:
        return self.backend / EDIT_FILE

    def env(self) -> dict[str, str]:
        return dict(os.environ, CARGO_TARGET_DIR=str(self.target))


@contextlib.contextmanager
def copied_backend(name: str, tmp: Path) -> Iterator[Copy]:
    """A copy to edit; afterwards the edited file is put back, the project destroyed, the
    shared `:dev` tag restored and the copy's images removed."""
    root = copy_for_edits(tmp)
    target = tmp / "cargo-target"
    seed_target_dir(target)
    project = DevenvProject(name, root=root, extra_env={"CARGO_TARGET_DIR": str(target)})
    copy = Copy(root / "backend", target, project)
    original = copy.source.read_bytes()
    with copy_images(copy.backend):
        try:
            yield copy
        finally:
            copy.source.write_bytes(original)
            project.destroy()


def edit_loop(tag: str, reps: int, res: Results, tmp: Path) -> None:
    """Append a comment to the backend, `devenv up` until healthy; the same for cargo alone."""
    if shutil.which("cargo") is None:
        res.notes.append("backend edit loop skipped: cargo is not installed")
        return
    cargo = ["cargo", "build", "--release", "--locked", "--bin", "ignition-api"]
    with copied_backend(f"{tag}-e", tmp) as copy:
        note("edit loop: first build of the copied backend and its stack (not timed)")
        run(cargo, cwd=copy.backend, env=copy.env(), what="cargo build (warm-up)")
        copy.project.cli("up")
        for rep in range(reps):
            with copy.source.open("a", encoding="utf-8") as fh:
                fh.write(f"// bench edit {rep} {secrets.token_hex(4)}\n")
            r = copy.project.cli("up", "--json")
            if '"recreated"' not in r.stdout:
                raise BenchError(f"the edit did not recreate the backend:\n{r.stdout[:800]}")
            res.edit.add(r.seconds)
            with copy.source.open("a", encoding="utf-8") as fh:
                fh.write(f"// bench cargo-only edit {rep} {secrets.token_hex(4)}\n")
            c = run(cargo, cwd=copy.backend, env=copy.env(), what="cargo build (timed)")
            res.cargo.add(c.seconds)
            note(f"rep {rep + 1} edit loop: devenv up {r.seconds:.2f}s, cargo {c.seconds:.2f}s")


# --- snapshots ---------------------------------------------------------------------------

SNAPSHOT_MB = 100
SNAPSHOT_OBJECTS = 200
PER_TEST_DATABASES = 30
INNER_CONFTEST = """
import json, os

import pytest

_times = []


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        _times.append((report.nodeid, report.when, report.duration))


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_TIMES"], "w") as fh:
        json.dump(_times, fh)
"""
INNER_TESTS = """
import psycopg
import pytest


def test_attach(devenv_stack):
    assert devenv_stack.database_url


@pytest.mark.parametrize("n", range(%d))
def test_clone(devenv_database, n):
    with psycopg.connect(devenv_database, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) VALUES (%%s)", (f"bench-{n}@example.test",))
"""


def _stack_clients(project: DevenvProject) -> tuple[str, S3Client]:
    """The project's database URL and an S3 client, as devenv resolves them."""
    from devenv.config.load import Options, load_config
    from devenv.observe import current
    from devenv.probes.base import S3Client

    options = Options(root=project.root, project=project.name, environ=project.env())
    stack = current(load_config(options), None)[1]
    return stack.endpoints.database_url, S3Client(stack.endpoints.storage, timeout=30)


def fill_stack(project: DevenvProject) -> None:
    """About SNAPSHOT_MB of table data and SNAPSHOT_OBJECTS objects of 1-128 KiB."""
    import psycopg

    url, s3 = _stack_clients(project)
    rows = SNAPSHOT_MB * 1_000_000 // 1_000
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload text)")
        conn.execute(
            "INSERT INTO bench_rows (payload) SELECT md5(g::text) || repeat('x', 900) "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
    with s3:
        for i in range(SNAPSHOT_OBJECTS):
            kind = ("image/png", "application/pdf", "text/plain")[i % 3]
            body = secrets.token_bytes(1024 + (i * 617) % (127 * 1024))
            s3.put_object(f"blobs/{i:04d}", body, content_type=kind)


def damage_stack(project: DevenvProject) -> None:
    import psycopg

    url, s3 = _stack_clients(project)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM bench_rows WHERE id % 10 = 0")
    with s3:
        s3.delete_objects([f"blobs/{i:04d}" for i in range(0, SNAPSHOT_OBJECTS, 4)])


def per_test_database(project: DevenvProject, tmp: Path) -> tuple[float, float]:
    """Median setup + teardown of a test using devenv_database, in ms (the first test of the
    session, which attaches to the stack, is left out), and the whole session's seconds."""
    import json

    (tmp / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp / "conftest.py").write_text(INNER_CONFTEST)
    (tmp / "test_bench.py").write_text(INNER_TESTS % PER_TEST_DATABASES)
    times = tmp / "times.json"
    env = dict(project.env(), BENCH_TIMES=str(times))
    session = run([sys.executable, "-m", "pytest", "-q", "test_bench.py"], env=env, cwd=tmp,
                  what="inner pytest with devenv_database")  # fmt: skip
    per: dict[str, float] = {}
    for nodeid, _when, seconds in json.loads(times.read_text()):
        if "test_clone" in nodeid:
            per[nodeid] = per.get(nodeid, 0.0) + seconds
    return statistics.median(per.values()) * 1000, session.seconds


def snapshot_rep(tag: str, rep: int, res: Results) -> None:
    project = DevenvProject(f"{tag}-s{rep}")
    try:
        project.cli("up")  # takes the golden state: migrated, seeded, empty bucket
        fill_stack(project)
        saved = project.cli("snapshot", "save", "bench")
        damage_stack(project)
        restored = project.cli("snapshot", "restore", "bench")
        if not restored.stdout.rstrip().endswith("done."):
            raise BenchError(f"restore did not say done:\n{restored.stdout[-800:]}")
        reset = project.cli("reset")
        with tempfile.TemporaryDirectory(prefix=f"{tag}-inner-") as tmp:
            per_test, session = per_test_database(project, Path(tmp))
    finally:
        project.destroy()
    res.snapshot_save.add(saved.seconds)
    res.snapshot_restore.add(restored.seconds)
    res.reset.add(reset.seconds)
    res.test_database.add(per_test)
    note(
        f"rep {rep + 1} snapshots: save {saved.seconds:.2f}s, restore {restored.seconds:.2f}s, "
        f"reset {reset.seconds:.2f}s, devenv_database {per_test:.0f} ms per test (inner "
        f"session of {PER_TEST_DATABASES + 1} tests: {session:.1f}s)"
    )


# --- devenv watch ------------------------------------------------------------------------

VERSION_LINE = re.compile(r'"api_version": VERSION,.*')


def handler_change(source: Path, marker: str) -> None:
    """The one-line handler change every watch measure makes: /version carries a marker."""
    text = source.read_text(encoding="utf-8")
    line = f'"api_version": VERSION, "bench_marker": "{marker}",'
    source.write_text(VERSION_LINE.sub(line, text, count=1), encoding="utf-8")


def source_images(source: Path) -> list[str]:
    """The images devenv built from this checkout (labelled with its path)."""
    label = f"label=io.devenv.backend-source-path={source.resolve()}"
    return run(["docker", "images", "-q", "--no-trunc", "--filter", label]).stdout.split()


@contextlib.contextmanager
def copy_images(backend: Path) -> Iterator[None]:
    """A copy at <root>/backend is "the reference backend" to devenv, so its builds move the
    shared `:dev` tag: put the tag back where it was, then remove the copy's images."""
    dev = run(["docker", "image", "inspect", "--format", "{{.Id}}", IMAGES[2]], check=False)
    dev_id = dev.stdout.strip() if dev.returncode == 0 else ""
    try:
        yield
    finally:
        if dev_id:
            run(["docker", "tag", dev_id, IMAGES[2]], check=False)  # before the copy's go
        leftovers = [i for i in source_images(backend) if i != dev_id]
        if leftovers:
            run(["docker", "rmi", "-f", *leftovers], check=False)


class WatchRun:
    """`devenv watch --json` in the background; its cycles line by line."""

    def __init__(self, project: DevenvProject, log: Path) -> None:
        self.log = log
        self._err = log.open("w")
        self.proc = subprocess.Popen(
            [*devenv_cmd(), "watch", "--json"],
            env=project.env(),
            cwd=project.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
        )

    def wait_ready(self) -> None:
        give_up = time.monotonic() + READY_DEADLINE
        while "[watch] ready:" not in self.log.read_text(encoding="utf-8"):
            if self.proc.poll() is not None or time.monotonic() > give_up:
                raise BenchError(f"devenv watch did not get ready:\n{self.tail()}")
            time.sleep(FAST_POLL)

    def cycle(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"devenv watch ended:\n{self.tail()}")
        data: dict[str, object] = json.loads(line)
        return data

    def tail(self) -> str:
        return "\n    ".join(self.log.read_text(encoding="utf-8").splitlines()[-8:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def watch_loop(tag: str, reps: int, res: Results, tmp: Path) -> None:
    """The same handler change `reps` times: saved under `devenv watch` (write to checks
    passing), built by cargo alone with watch's own command, and run through `devenv up`."""
    if shutil.which("cargo") is None:
        res.notes.append("watch rows skipped: cargo is not installed")
        return
    with copied_backend(f"{tag}-w", tmp) as copy:
        note(f"watch: the copied backend's image and stack (not timed), {load()}")
        copy.project.cli("up")
        before = set(source_images(copy.backend))
        watch_reps(copy.project, copy.source, reps, res, tmp / "watch.log")
        res.watch_images.add(float(len(set(source_images(copy.backend)) - before)))
        cargo_reps(copy.backend, copy.source, copy.target, reps, res)
        for rep in range(reps):
            handler_change(copy.source, f"up-{rep}-{secrets.token_hex(3)}")
            r = copy.project.cli("up", "--json")
            if '"recreated"' not in r.stdout:
                raise BenchError(f"the change did not recreate the backend:\n{r.stdout[:800]}")
            res.watch_up.add(r.seconds)
            note(f"rep {rep + 1} devenv up loop: {r.seconds:.2f}s")


def watch_reps(project: DevenvProject, source: Path, reps: int, res: Results, log: Path) -> None:
    """Time from writing the change to the cycle's line saying the route checks passed."""
    watching = WatchRun(project, log)
    try:
        watching.wait_ready()
        for rep in range(reps):
            started = time.perf_counter()
            handler_change(source, f"watch-{rep}-{secrets.token_hex(3)}")
            cycle = watching.cycle()
            took = time.perf_counter() - started
            if cycle.get("outcome") != "served" or cycle.get("ok") is not True:
                raise BenchError(f"a watch cycle did not serve and pass:\n{cycle}")
            res.watch.add(took)
            build, restart = cycle["build_seconds"], cycle["restart_seconds"]
            note(f"rep {rep + 1} watch: save to checks passing {took:.2f}s (cargo {build}s, "
                 f"restart {restart}s), {load()}")  # fmt: skip
    finally:
        watching.stop()


def cargo_reps(backend: Path, source: Path, target: Path, reps: int, res: Results) -> None:
    """cargo alone, with the very command watch runs (its default cargo mode)."""
    from devenv.images.build import cargo_command
    from devenv.model import BackendBuild
    from devenv.watch.cargo import workspace_packages
    from devenv.watch.paths import DEFAULT_PROFILE

    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    build = BackendBuild(backend)
    own = workspace_packages(backend, env, build.package)
    cargo = cargo_command(build, locked=True, profile=DEFAULT_PROFILE, unoptimized=own)
    for rep in range(reps):
        handler_change(source, f"cargo-{rep}-{secrets.token_hex(3)}")
        c = run(cargo, cwd=backend, env=env, what="cargo build (watch's command, timed)")
        res.watch_cargo.add(c.seconds)
        note(f"rep {rep + 1} cargo alone: {c.seconds:.2f}s")


def finish(res: Results, rows: list[Row]) -> None:
    """The table of `rows`, then the notes of what was skipped."""
    note(f"done, {load()}")
    print(render(rows))
    for line in res.notes:
        print(f"note: {line}")


def only_watch(tag: str, reps: int, res: Results) -> int:
    try:
        preflight(compose=False)
        note(f"projects {tag}-*, {reps} rep(s), watch rows only, {load()}")
        with tempfile.TemporaryDirectory(prefix=f"{tag}-") as tmp:
            watch_loop(tag, reps, res, Path(tmp))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finish(res, res.watch_rows())
    return 0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def only_snapshots(tag: str, reps: int, res: Results) -> int:
    try:
        preflight(compose=False)
        note(f"projects {tag}-*, {reps} rep(s), snapshot rows only, {load()}")
        for rep in range(reps):
            snapshot_rep(tag, rep, res)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finish(res, res.snapshot_rows())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measure")
    parser.add_argument(
        "--no-edit-loop", action="store_true", help="skip the cargo edit loops (up and watch)"
    )
    parser.add_argument(
        "--only",
        choices=("all", "snapshots", "watch"),
        default="all",
        help="measure only these rows (snapshots: save, restore, reset, devenv_database; "
        "watch: save to verified, cargo alone, the up loop)",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, terminate)
    tag = f"bench-{secrets.token_hex(3)}"
    res = Results()
    if args.only == "snapshots":
        return only_snapshots(tag, args.reps, res)
    if args.only == "watch":
        return only_watch(tag, max(args.reps, WATCH_MIN_REPS), res)
    try:
        preflight()
        versions = run(["docker-compose", "version", "--short"]).stdout.strip()
        api = run(["docker", "version", "--format", "{{.Server.APIVersion}}"]).stdout.strip()
        note(f"projects {tag}-*, {args.reps} rep(s), compose {versions}, API {api}, {load()}")
        for rep in range(args.reps):
            devenv_rep(tag, rep, res)
            compose_rep(tag, rep, res, poll=E2E_POLL)
            compose_rep(tag, rep, res, poll=FAST_POLL)
            snapshot_rep(tag, rep, res)
        if not args.no_edit_loop:
            with tempfile.TemporaryDirectory(prefix=f"{tag}-") as tmp:
                edit_loop(tag, args.reps, res, Path(tmp))
            with tempfile.TemporaryDirectory(prefix=f"{tag}-") as tmp:
                watch_loop(tag, max(args.reps, WATCH_MIN_REPS), res, Path(tmp))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finish(res, res.rows())
    d, c = res.cold.median, res.cold_compose.median
    print(f"summary: cold up devenv {d:.1f} s vs docker-compose {c:.1f} s = {d / c:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
