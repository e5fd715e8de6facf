"""`devenv up`/`down` over a stack's life: drift, data kept or deleted, port fallback, healing."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from devenv.probes.base import S3Client
from tests.integration.conftest import CONTAINER_KINDS, Stack, container_steps, copy_project

TABLE = "devenv_lifecycle_probe"  # spelled out in the SQL below: queries stay literals


def _ids(stack: Stack) -> dict[str, str]:
    return {c.labels["io.devenv.service"]: c.id for c in stack.containers()}


def _edit_compose(root: Path, old: str, new: str) -> None:
    path = root / "compose" / "compose.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found exactly once in the compose file"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _plan_lines(text: str) -> dict[str, tuple[str, str]]:
    """The container step (`kind target cause`) of each service in a printed plan."""
    found: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] in CONTAINER_KINDS:
            found.setdefault(parts[1], (parts[0], parts[2] if len(parts) == 3 else ""))
    return found


def _write_row(stack: Stack, value: str) -> None:
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS devenv_lifecycle_probe (value text NOT NULL)")
        conn.execute("INSERT INTO devenv_lifecycle_probe (value) VALUES (%s)", (value,))


def _rows(stack: Stack) -> list[str] | None:
    """The probe table's values, or None when the table does not exist."""
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
        if exists is None or exists[0] is None:
            return None
        rows = conn.execute("SELECT value FROM devenv_lifecycle_probe ORDER BY value")
        return [str(r[0]) for r in rows]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A plain TCP listener on a free loopback port: a process that is not ours holds it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock
    finally:
        sock.close()


def test_env_change_recreates_only_that_service(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack(root=copy_project(tmp_path))
    stack.up()
    before = _ids(stack)
    assert set(before) == {"postgres", "objectstore", "backend"}

    _edit_compose(stack.root, "RUST_LOG: info", "RUST_LOG: debug")
    plan = _plan_lines(stack.cli("up", "--dry-run").stdout)
    assert plan["backend"][0] == "recreate", plan
    assert "env RUST_LOG" in plan["backend"][1], plan
    assert plan["postgres"][0] == "keep", plan
    assert plan["objectstore"][0] == "keep", plan
    assert _ids(stack) == before, "--dry-run changed containers"

    result = json.loads(stack.cli("up", "--json").stdout)
    kinds = container_steps(result["plan"])
    assert kinds == {"postgres": "keep", "objectstore": "keep", "backend": "recreate"}
    after = _ids(stack)
    assert after["postgres"] == before["postgres"]
    assert after["objectstore"] == before["objectstore"]
    assert after["backend"] != before["backend"]
    env = dict(e.split("=", 1) for e in stack.container("backend").attrs["Config"]["Env"])
    assert env["RUST_LOG"] == "debug"
    assert stack.service("backend")["healthy"] is True


def test_down_keeps_data_and_up_brings_it_back(stack: Stack) -> None:
    _write_row(stack, "kept-row")
    with S3Client(stack.storage()) as s3:
        s3.put("lifecycle/kept.txt", b"kept object")
    volumes = sorted(v.name for v in stack.volumes())
    assert volumes == [f"{stack.project}_pgdata", f"{stack.project}_s3data"]

    down = stack.cli("down")
    assert "Kept volumes" in down.stdout
    assert stack.containers() == []
    assert sorted(v.name for v in stack.volumes()) == volumes

    stack.up()
    assert _rows(stack) == ["kept-row"]
    with S3Client(stack.storage()) as s3:
        assert s3.get("lifecycle/kept.txt") == b"kept object"


def test_down_volumes_needs_confirmation_then_deletes_data(stack: Stack) -> None:
    _write_row(stack, "doomed-row")
    before = _ids(stack)

    refused = stack.cli("down", "--volumes", check=False, input_text="")
    assert refused.returncode == 9, refused.stderr
    assert "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _ids(stack) == before
    assert len(stack.volumes()) == 2
    assert _rows(stack) == ["doomed-row"]

    gone = stack.cli("down", "--volumes", "--yes", input_text="")
    assert "Deleted volumes" in gone.stdout
    assert stack.containers() == []
    assert stack.volumes() == []

    stack.up()
    assert _rows(stack) is None


def test_taken_preferred_port_falls_back_and_sticks(
    make_stack: Callable[..., Stack], tmp_path: Path, listener: socket.socket
) -> None:
    held = int(listener.getsockname()[1])
    root = copy_project(tmp_path)
    _edit_compose(root, "${POSTGRES_PORT:-5432}", f"${{POSTGRES_PORT:-{held}}}")
    stack = make_stack(root=root)

    first = stack.cli("up")
    match = re.search(rf"postgres: port {held} is taken, using (\d+) instead", first.stderr)
    assert match, first.stderr
    used = int(match.group(1))
    assert used != held
    assert stack.state()["ports"]["postgres"] == used
    bindings = stack.container("postgres").attrs["HostConfig"]["PortBindings"]["5432/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(used)}]
    assert stack.service("postgres")["healthy"] is True

    again = json.loads(stack.cli("up", "--json").stdout)
    assert again["noop"] is True, again["plan"]
    assert again["notes"] == []
    assert stack.state()["ports"]["postgres"] == used


def test_strict_ports_names_the_devenv_container_holding_the_port(
    stack: Stack, make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    taken = stack.state()["ports"]["postgres"]
    root = copy_project(tmp_path)
    _edit_compose(root, "${POSTGRES_PORT:-5432}", f"${{POSTGRES_PORT:-{taken}}}")
    other = make_stack(root=root)

    refused = other.cli("up", "--strict-ports", check=False)
    assert refused.returncode == 6, refused.stdout + refused.stderr
    assert f"{stack.project}-postgres" in refused.stderr
    assert str(taken) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert other.containers() == []
    assert stack.service("postgres")["healthy"] is True


def test_stopped_service_shows_exited_and_up_heals_only_it(stack: Stack) -> None:
    before = _ids(stack)
    stack.container("objectstore").stop(timeout=10)

    svc = stack.service("objectstore")
    assert svc["state"] == "exited"
    assert svc["healthy"] is False
    assert svc["provider"] == "local"
    assert "exited with code" in svc["detail"]
    assert stack.service("postgres")["state"] == "running"

    result = json.loads(stack.cli("up", "--json").stdout)
    kinds = container_steps(result["plan"])
    assert kinds == {"postgres": "keep", "objectstore": "start", "backend": "keep"}
    assert _ids(stack) == before
    healed = stack.service("objectstore")
    assert healed["state"] == "running"
    assert healed["healthy"] is True


def test_down_volumes_with_a_volume_in_use_is_one_line(stack: Stack) -> None:
    """Another container (not devenv's) holds the data volume: the engine refuses to delete
    it, and devenv says so in one line with its own exit code, after removing its containers."""
    import uuid

    import docker

    engine = docker.from_env(version="auto")
    holder = engine.containers.create(
        "devenv-standin/postgres:15",
        name=f"t-holder-{uuid.uuid4().hex[:8]}",
        command=["true"],
        volumes={f"{stack.project}_pgdata": {"bind": "/data", "mode": "rw"}},
    )
    try:
        proc = stack.cli("down", "--volumes", "--yes", check=False)
        assert proc.returncode == 11, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"Engine error: volume {stack.project}_pgdata is in use")
        assert "Traceback" not in proc.stderr
        assert stack.containers() == []
    finally:
        holder.remove(force=True)
