"""Fixtures for tests against the real Docker engine: unique projects that are always removed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devenv.model import S3Target

REPO = Path(__file__).resolve().parents[2]
LABEL_PROJECT = "io.devenv.project"


def _engine() -> Any:
    import docker

    return docker.from_env(version="auto")


@dataclass
class Stack:
    """A devenv project of its own (name, root), driven through the real CLI."""

    project: str
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVENV_")}
        env.update(DEVENV_PROJECT=self.project, DEVENV_ROOT=str(self.root))
        env.update(self.extra_env)
        env.update(more)
        return env

    def cli(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        env: Mapping[str, str] | None = None,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "devenv", *args],
            cwd=self.root,
            env=dict(env) if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"devenv {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def up(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("up", *args)

    def status(self, *args: str) -> dict[str, Any]:
        """`status --json`, whose exit code must say whether every service is healthy."""
        proc = self.cli("status", "--json", *args, check=False)
        data: dict[str, Any] = json.loads(proc.stdout)
        healthy = all(s["healthy"] for s in data["services"])
        assert proc.returncode == (0 if healthy else 1), (proc.returncode, proc.stderr)
        return data

    def service(self, name: str, *args: str) -> dict[str, Any]:
        for svc in self.status(*args)["services"]:
            if svc["name"] == name:
                return dict(svc)
        raise AssertionError(f"no service {name} in status")

    def state(self) -> dict[str, Any]:
        path = self.root / ".devenv" / self.project / "state.json"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def containers(self) -> list[Any]:
        return list(
            _engine().containers.list(
                all=True, filters={"label": f"{LABEL_PROJECT}={self.project}"}
            )
        )

    def container(self, service: str) -> Any:
        for c in self.containers():
            if c.labels.get("io.devenv.service") == service:
                return c
        raise AssertionError(f"no container for {service}")

    def volumes(self) -> list[Any]:
        return list(_engine().volumes.list(filters={"label": f"{LABEL_PROJECT}={self.project}"}))

    def storage(self) -> S3Target:
        """The bucket as devenv itself resolves it for this project (one source of truth)."""
        from devenv.config.load import Options, load_config
        from devenv.observe import current

        options = Options(root=self.root, project=self.project, environ=self.env())
        return current(load_config(options), None)[1].endpoints.storage

    def database_url(self) -> str:
        creds = self.state()["credentials"]
        port = self.state()["ports"]["postgres"]
        return f"postgres://ignition:{creds['postgres_password']}@127.0.0.1:{port}/ignition"

    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.state()['ports']['backend']}"

    def destroy(self) -> None:
        self.cli("down", "--volumes", "--yes", check=False, timeout=120)
        engine = _engine()
        flt = {"label": f"{LABEL_PROJECT}={self.project}"}
        for c in engine.containers.list(all=True, filters=flt):
            c.remove(force=True)
        for v in engine.volumes.list(filters=flt):
            v.remove(force=True)
        shutil.rmtree(self.root / ".devenv" / self.project, ignore_errors=True)


CONTAINER_KINDS = ("create", "recreate", "start", "keep", "remove")


def container_steps(plan: list[dict[str, Any]]) -> dict[str, str]:
    """What a printed plan (`--json`) does to each container: its first container step."""
    found: dict[str, str] = {}
    for step in plan:
        if step["kind"] in CONTAINER_KINDS:
            found.setdefault(step["target"], step["kind"])
    return found


def unique_project(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def copy_project(dest: Path) -> Path:
    """A project root of its own whose compose file a test may edit; images and backend shared."""
    (dest / "compose").mkdir(parents=True)
    shutil.copy2(REPO / "compose" / "compose.yaml", dest / "compose" / "compose.yaml")
    (dest / "compose" / "images").symlink_to(REPO / "compose" / "images")
    (dest / "backend").symlink_to(REPO / "backend")
    shutil.copytree(REPO / "profiles", dest / "profiles")
    shutil.copytree(REPO / "contracts", dest / "contracts")
    return dest


@pytest.fixture(scope="session")
def images() -> None:
    """Build every missing stand-in image once per session (a no-op when they exist)."""
    stack = Stack(project=unique_project("img"), root=REPO)
    stack.cli("images", "build", timeout=1800)
    shutil.rmtree(REPO / ".devenv" / stack.project, ignore_errors=True)


@pytest.fixture
def make_stack(images: None, request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(root: Path | None = None, **extra_env: str) -> Stack:
        stack = Stack(project=unique_project(), root=root or REPO, extra_env=dict(extra_env))
        made.append(stack)
        return stack

    yield make
    failed = getattr(request.node, "rep_call", None)
    for stack in made:
        if failed is not None and failed.failed:
            logs = stack.cli("logs", "--tail", "30", check=False)
            sys.stderr.write(f"--- logs of {stack.project}\n{logs.stdout}{logs.stderr}\n")
        stack.destroy()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """A running, verified local stack of its own."""
    s = make_stack()
    s.up()
    return s


@pytest.fixture(scope="session")
def shared_stack(images: None) -> Iterator[Stack]:
    """One running stack for tests that only read (checks, reports, security scans)."""
    s = Stack(project=unique_project("shared"), root=REPO)
    try:
        s.up()
        yield s
    finally:
        s.destroy()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
