"""Faults on the real engine: killed containers, crash loops, no engine, SIGINT, races, stolen
ports, and data that must survive restarts, recreates and refused image changes."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest

from devenv.probes.base import S3Client
from tests.integration.conftest import Stack, container_steps, copy_project, unique_project

SERVICES = ("postgres", "objectstore", "backend")
BAD_DATABASE_URL = "postgres://x:y@127.0.0.1:1/nope"
STANDIN_POSTGRES = "devenv-standin/postgres:15"


def _engine() -> Any:
    return docker.from_env(version="auto")


def _ids(stack: Stack) -> dict[str, str]:
    return {c.labels["io.devenv.service"]: c.id for c in stack.containers()}


def _poll(what: str, check: Callable[[], bool], *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _write_row(stack: Stack, value: str) -> None:
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t_faults (v text)")
        conn.execute("INSERT INTO t_faults (v) VALUES (%s)", (value,))


def _rows(stack: Stack) -> list[str]:
    with psycopg.connect(stack.database_url(), connect_timeout=10) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM t_faults ORDER BY v").fetchall()]


def _plan(stack: Stack) -> dict[str, str]:
    return container_steps(json.loads(stack.cli("up", "--dry-run", "--json").stdout)["plan"])


def _edit_compose(root: Path, old: str, new: str) -> None:
    path = root / "compose" / "compose.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _env_of(container: Any) -> dict[str, str]:
    container.reload()
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


def _spawn(stack: Stack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devenv", *args],
        cwd=stack.root,
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def image_tags() -> Iterator[list[str]]:
    """Image tags a test creates; every one is removed afterwards."""
    tags: list[str] = []
    yield tags
    engine = _engine()
    for tag in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(tag)


# --- a container killed behind devenv's back ------------------------------------------------


def test_killed_container_is_reported_and_healed_alone(stack: Stack) -> None:
    _write_row(stack, "before-kill")
    before = _ids(stack)
    stack.container("postgres").kill()
    _poll("postgres to stop", lambda: stack.container("postgres").status != "running")

    pg = stack.service("postgres")
    assert pg["state"] != "running", pg
    assert pg["healthy"] is False, pg

    plan = _plan(stack)
    assert plan["postgres"] in ("start", "create", "recreate"), plan
    for other in ("objectstore", "backend"):
        assert plan[other] == "keep", plan

    stack.up()
    after = _ids(stack)
    for other in ("objectstore", "backend"):
        assert after[other] == before[other], other
    assert after["postgres"] == before["postgres"]  # started again, not replaced
    for svc in stack.status()["services"]:
        assert svc["healthy"] is True, svc
    assert _rows(stack) == ["before-kill"]


# --- a backend that cannot reach its database -----------------------------------------------


def test_backend_crash_loop_fails_fast_with_cause_and_logs(
    tmp_path: Path, make_stack: Callable[..., Stack]
) -> None:
    root = copy_project(tmp_path)
    _edit_compose(
        root,
        "DATABASE_URL: ${DATABASE_URL:-postgres://ignition:ignition@127.0.0.1:5432/ignition}",
        f"DATABASE_URL: {BAD_DATABASE_URL}",
    )
    s = make_stack(root=root)
    t0 = time.monotonic()
    proc = s.cli("up", "--timeout", "60", check=False, timeout=300)
    took = time.monotonic() - t0
    err = proc.stderr
    assert proc.returncode == 7, err
    assert "Traceback" not in err
    assert took < 60 + 30, f"up took {took:.0f}s for a 60 s timeout"
    first = next(line for line in err.splitlines() if line.startswith("Not ready:"))
    assert "service backend" in first, err
    assert "last log lines:" in err
    log_part = err.split("last log lines:", 1)[1]
    assert log_part.strip(), err
    assert "container exited with code" in first, first
    assert "container:  " in err or "container: exited" in err, err
    assert "database" in log_part.lower(), log_part
    assert "connect" in log_part.lower(), log_part


# --- no engine ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("up",), ("status",), ("down",)], ids=["up", "status", "down"])
def test_docker_unreachable_is_one_line_exit_4(tmp_path: Path, command: tuple[str, ...]) -> None:
    s = Stack(project=unique_project(), root=copy_project(tmp_path))
    proc = s.cli(*command, check=False, timeout=60, env=s.env(DOCKER_HOST="tcp://127.0.0.1:1"))
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Docker unavailable:"), lines[0]


# --- SIGINT -------------------------------------------------------------------------------


def test_sigint_exits_130_and_next_up_recovers(make_stack: Callable[..., Stack]) -> None:
    s = make_stack()
    proc = _spawn(s, "up")
    try:
        api = _engine().api
        flt = {"label": [f"io.devenv.project={s.project}", "io.devenv.service=postgres"]}

        def postgres_exists() -> bool:
            assert proc.poll() is None, "up finished before it could be interrupted"
            # the low-level list: no per-container inspect that could race a removal
            return bool(api.containers(all=True, filters=flt))

        _poll("the postgres container", postgres_exists, timeout=120)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "Interrupted" in err

    s.up()
    for svc in s.status()["services"]:
        assert svc["healthy"] is True, svc
    assert sorted(c.labels["io.devenv.service"] for c in s.containers()) == sorted(SERVICES)
    t0 = time.monotonic()
    dry = s.cli("up", "--dry-run", timeout=60)
    assert time.monotonic() - t0 < 30
    assert "waiting for another devenv" not in dry.stderr


# --- two ups at once ----------------------------------------------------------------------


def test_two_concurrent_ups_leave_one_container_per_service(
    make_stack: Callable[..., Stack],
) -> None:
    s = make_stack()
    procs = [_spawn(s, "up"), _spawn(s, "up")]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        results.append((p.returncode, out, err))
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 8]), results
    for code, _, err in results:
        assert "Traceback" not in err
        if code == 8:
            assert err.strip().splitlines()[-1].startswith("Busy:"), err
    services = sorted(c.labels["io.devenv.service"] for c in s.containers())
    assert services == sorted(SERVICES)
    assert len(s.volumes()) == 2
    for svc in s.status()["services"]:
        assert svc["healthy"] is True, svc


# --- a remembered port taken between runs --------------------------------------------------


def test_remembered_port_taken_moves_to_a_new_port(stack: Stack) -> None:
    old = stack.state()["ports"]["postgres"]
    stack.cli("down")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        # our own probes leave connections in TIME_WAIT on that port; they do not hold it
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old))
        squatter.listen(1)
        stack.up()
        new = stack.state()["ports"]["postgres"]
        assert new != old
        pg = stack.container("postgres")
        pg.reload()
        bound = pg.attrs["NetworkSettings"]["Ports"]["5432/tcp"]
        assert [int(b["HostPort"]) for b in bound] == [new]
        env = _env_of(stack.container("backend"))
        assert f"@127.0.0.1:{new}/" in env["DATABASE_URL"]
        assert f":{old}/" not in env["DATABASE_URL"]
        backend = stack.service("backend")
        assert backend["healthy"] is True, backend
        assert stack.service("postgres")["healthy"] is True


# --- data that must survive ----------------------------------------------------------------


def test_postgres_data_survives_restart_recreate_and_minor_image_change_not_major(
    tmp_path: Path, make_stack: Callable[..., Stack], image_tags: list[str]
) -> None:
    root = copy_project(tmp_path)
    s = make_stack(root=root)
    s.up()
    _write_row(s, "a-first")

    s.cli("down")
    assert s.containers() == []
    s.up()
    assert _rows(s) == ["a-first"]

    _edit_compose(
        root, "      POSTGRES_DB: ignition\n", "      POSTGRES_DB: ignition\n      TZ: UTC\n"
    )
    assert _plan(s)["postgres"] == "recreate"
    before = _ids(s)["postgres"]
    s.up()
    assert _ids(s)["postgres"] != before
    assert _env_of(s.container("postgres"))["TZ"] == "UTC"
    _write_row(s, "b-after-recreate")
    assert _rows(s) == ["a-first", "b-after-recreate"]

    engine = _engine()
    same_major = f"t-pg-same-major:15-{uuid.uuid4().hex[:8]}"
    image_tags.append(same_major)
    assert engine.images.get(STANDIN_POSTGRES).tag(same_major)
    _edit_compose(root, "    image: postgres:15.10-bookworm\n", f"    image: {same_major}\n")
    assert _plan(s)["postgres"] == "recreate"
    s.up()
    assert s.container("postgres").attrs["Config"]["Image"] == same_major
    assert _rows(s) == ["a-first", "b-after-recreate"]

    major = f"t-pg-major:16-{uuid.uuid4().hex[:8]}"
    repo, tag = major.split(":")
    holder = engine.containers.create(STANDIN_POSTGRES, name=f"t-pg16-{uuid.uuid4().hex[:8]}")
    try:
        holder.commit(repository=repo, tag=tag, changes=["ENV PG_MAJOR=16"])
        image_tags.append(major)
    finally:
        holder.remove(force=True)
    _edit_compose(root, f"    image: {same_major}\n", f"    image: {major}\n")
    keep = s.container("postgres")
    proc = s.cli("up", check=False)
    assert proc.returncode == 9, proc.stderr
    assert "Traceback" not in proc.stderr
    refused = proc.stderr.strip().splitlines()[-1]
    assert refused.startswith("Refused:"), proc.stderr
    assert "Postgres 15" in refused
    assert "Postgres 16" in refused
    after = s.container("postgres")
    after.reload()
    assert after.id == keep.id
    assert after.status == "running"
    assert after.attrs["Config"]["Image"] == same_major
    assert _rows(s) == ["a-first", "b-after-recreate"]


def _s3(stack: Stack) -> S3Client:
    return S3Client(stack.storage(), timeout=10)


def test_bucket_objects_survive_down_and_up(stack: Stack) -> None:
    key = f"t-faults/{uuid.uuid4().hex}.txt"
    body = f"kept across restarts {uuid.uuid4()}".encode()
    with _s3(stack) as s3:
        s3.put(key, body)
        assert s3.get(key) == body
    stack.cli("down")
    assert stack.containers() == []
    assert len(stack.volumes()) == 2
    stack.up()
    with _s3(stack) as s3:
        assert s3.get(key) == body
