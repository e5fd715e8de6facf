"""Profiles on the real engine: external providers started outside devenv, and config errors."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from devenv.model import S3Target
from devenv.probes.base import S3Client
from devenv.probes.postgres import PostgresProbe
from devenv.probes.waiting import wait_ready
from tests.integration.conftest import Stack, container_steps, copy_project, unique_project

READY_TIMEOUT = 120.0


def _engine() -> Any:
    import docker

    return docker.from_env(version="auto")


def _published_port(container: Any, port: str) -> int:
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(port) or []
    for b in bindings:
        if b.get("HostIp") == "127.0.0.1" and b.get("HostPort"):
            return int(b["HostPort"])
    raise AssertionError(f"{container.name}: {port} not published on 127.0.0.1: {bindings}")


def _run_outside(image: str, prefix: str, **kwargs: Any) -> Any:
    """A container devenv knows nothing about: no devenv labels, loopback-only random port."""
    return _engine().containers.run(
        image, name=f"{prefix}-{secrets.token_hex(4)}", detach=True, **kwargs
    )


def _remove(container: Any) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):  # already gone is fine
        container.remove(force=True, v=True)


@dataclass(frozen=True)
class OutsidePostgres:
    url: str
    password: str


@dataclass
class _BucketServer:
    """One attempt: the S3 server answers a signed HEAD on the bucket (missing is fine)."""

    target: S3Target
    name: str = "outside-s3"

    @property
    def endpoint(self) -> str:
        return self.target.endpoint

    def attempt(self) -> str:
        with S3Client(self.target) as s3:
            return "bucket present" if s3.bucket_exists() else "server answers"


@pytest.fixture
def outside_postgres(images: None) -> Iterator[OutsidePostgres]:
    password = secrets.token_hex(12)
    container = _run_outside(
        "devenv-standin/postgres:15",
        "t-extpg",
        environment={
            "POSTGRES_USER": "extuser",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": "extdb",
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
    )
    try:
        port = _published_port(container, "5432/tcp")
        url = f"postgres://extuser:{password}@127.0.0.1:{port}/extdb"
        ready = wait_ready(
            PostgresProbe(url=url, display="outside postgres"), timeout=READY_TIMEOUT
        )
        assert ready.ok, f"outside Postgres not ready: {ready.detail}\n{container.logs()!r}"
        yield OutsidePostgres(url=url, password=password)
    finally:
        _remove(container)


@pytest.fixture
def outside_s3(images: None) -> Iterator[S3Target]:
    access, secret = "t" + secrets.token_hex(6), secrets.token_hex(16)
    container = _run_outside(
        "devenv-standin/objectstore:1",
        "t-exts3",
        environment={"MINIO_ROOT_USER": access, "MINIO_ROOT_PASSWORD": secret},
        command=["server", "/data"],
        ports={"9000/tcp": ("127.0.0.1", None)},
    )
    try:
        port = _published_port(container, "9000/tcp")
        target = S3Target(
            endpoint=f"http://127.0.0.1:{port}",
            bucket="ignition",
            region="us-east-1",
            access_key=access,
            secret_key=secret,
        )
        ready = wait_ready(_BucketServer(target), timeout=READY_TIMEOUT)
        assert ready.ok, f"outside S3 server not ready: {ready.detail}\n{container.logs()!r}"
        yield target
    finally:
        _remove(container)


def _services(stack: Stack) -> set[str]:
    return {c.labels["io.devenv.service"] for c in stack.containers()}


def _env(container: Any) -> dict[str, str]:
    container.reload()
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


def _has_migrations(url: str) -> bool:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT to_regclass('_sqlx_migrations')").fetchone()
    return row is not None and row[0] is not None


# --- external providers ------------------------------------------------------------------


def test_hybrid_uses_outside_postgres_and_refuses_the_bypass(
    make_stack: Callable[..., Stack], outside_postgres: OutsidePostgres
) -> None:
    assert not _has_migrations(outside_postgres.url)
    stack = make_stack(DEVENV_HYBRID_DATABASE_URL=outside_postgres.url)
    up = stack.cli("up", "--profile", "hybrid")
    assert outside_postgres.password not in up.stdout + up.stderr

    assert _services(stack) == {"objectstore", "backend"}
    assert all(v.name != f"{stack.project}_pgdata" for v in stack.volumes())
    status = stack.status("--profile", "hybrid")
    assert status["profile"] == "hybrid"
    pg = next(s for s in status["services"] if s["name"] == "postgres")
    assert pg["provider"] == "external"
    assert pg["state"] == "external"
    assert pg["healthy"] is True, pg
    assert outside_postgres.password not in json.dumps(status)

    assert _has_migrations(outside_postgres.url)
    env = _env(stack.container("backend"))
    assert env["DATABASE_URL"] == outside_postgres.url
    assert env["AUTH_DEV_BYPASS"] == "false"
    answer = httpx.get(stack.backend_url() + "/api", timeout=10)
    assert answer.status_code == 401, answer.text

    config = stack.cli("config", "--profile", "hybrid")
    assert outside_postgres.password not in config.stdout + config.stderr
    assert "****" in config.stdout
    shown = json.loads(stack.cli("config", "--profile", "hybrid", "--json").stdout)
    url_row = next(v for v in shown["values"] if v["key"] == "services.postgres.url")
    assert outside_postgres.password not in url_row["value"]
    assert url_row["value"].startswith("postgres://extuser:****@127.0.0.1:")
    assert shown["dev_bypass"] is False


def test_switching_back_to_local_keeps_the_standin_data(
    make_stack: Callable[..., Stack], outside_postgres: OutsidePostgres
) -> None:
    stack = make_stack(DEVENV_HYBRID_DATABASE_URL=outside_postgres.url)
    stack.up()
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE devenv_profile_probe (value text NOT NULL)")
        conn.execute("INSERT INTO devenv_profile_probe VALUES ('local-row')")
    local_pg = stack.container("postgres").id

    stack.cli("up", "--profile", "hybrid")
    assert "postgres" not in _services(stack)
    assert f"{stack.project}_pgdata" in {v.name for v in stack.volumes()}
    assert _env(stack.container("backend"))["DATABASE_URL"] == outside_postgres.url

    back = json.loads(stack.cli("up", "--json").stdout)
    kinds = container_steps(back["plan"])
    assert kinds["postgres"] == "create"
    assert kinds["backend"] == "recreate"
    assert stack.container("postgres").id != local_pg
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute("SELECT value FROM devenv_profile_probe").fetchall()
    assert rows == [("local-row",)]
    assert stack.service("postgres")["provider"] == "local"


def test_profile_file_binds_outside_object_store(
    make_stack: Callable[..., Stack], outside_s3: S3Target, tmp_path: Path
) -> None:
    profile = tmp_path / "outside-s3.toml"
    profile.write_text(
        f"""description = "local stack, object store outside devenv"

[auth]
dev_bypass = true

[services.objectstore]
provider = "external"
endpoint = "{outside_s3.endpoint}"
bucket = "{outside_s3.bucket}"
region = "{outside_s3.region}"
access_key_id = "${{T_OUTSIDE_S3_ACCESS}}"
secret_access_key = "${{T_OUTSIDE_S3_SECRET}}"
protected = false
""",
        encoding="utf-8",
    )
    stack = make_stack(
        T_OUTSIDE_S3_ACCESS=outside_s3.access_key, T_OUTSIDE_S3_SECRET=outside_s3.secret_key
    )
    up = stack.cli("up", "--profile", str(profile))
    assert outside_s3.secret_key not in up.stdout + up.stderr

    assert _services(stack) == {"postgres", "backend"}
    obj = stack.service("objectstore", "--profile", str(profile))
    assert obj["provider"] == "external"
    assert obj["healthy"] is True, obj
    assert obj["url"].startswith(outside_s3.endpoint)
    env = _env(stack.container("backend"))
    assert env["STORAGE_ENDPOINT"] == outside_s3.endpoint
    assert env["STORAGE_ACCESS_KEY_ID"] == outside_s3.access_key
    assert env["AUTH_DEV_BYPASS"] == "true"

    with S3Client(outside_s3) as s3:
        assert s3.bucket_exists()
        s3.put("profiles/round-trip.txt", b"outside")
        assert s3.get("profiles/round-trip.txt") == b"outside"
        s3.delete("profiles/round-trip.txt")
    checked = stack.cli("check", "--profile", str(profile), "--json", check=False)
    report = json.loads(checked.stdout)
    failed = [c for c in report["checks"] if not c["ok"] and not c["skipped"]]
    assert failed == [], failed
    assert checked.returncode == 0


def _objects(target: S3Target) -> dict[str, tuple[object, ...]]:
    """Every object in the bucket with its size and time, read with boto3 (an independent
    client)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        region_name=target.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    listed = client.list_objects_v2(Bucket=target.bucket)
    return {o["Key"]: (o.get("Size"), o.get("LastModified")) for o in listed.get("Contents", [])}


class _RecordingProxy:
    """An HTTP relay in front of the S3 server that records every request's method and path:
    a write that cleans up after itself (put, then delete) still shows here."""

    def __init__(self, upstream: str) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.seen: list[tuple[str, str]] = []
        seen = self.seen
        up = urlsplit(upstream)

        class Relay(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                seen.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=10)
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    answer = conn.getresponse()
                    data = answer.read()
                finally:
                    conn.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _relay

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.seen if m not in ("GET", "HEAD")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_protected_object_store_is_only_read(
    make_stack: Callable[..., Stack], outside_s3: S3Target, tmp_path: Path
) -> None:
    """Staging's R2 stands for this store: up, status and check write nothing into it, not
    even the readiness probe's scratch object (which a put/get/delete would leave no trace of
    in the bucket: a relay in front of the store sees every request)."""
    with S3Client(outside_s3) as s3:
        if not s3.bucket_exists():
            s3.create_bucket()
        s3.put("users/existing.png", b"a real user's file")
        s3.put("users/other.txt", b"another one")
    before = _objects(outside_s3)
    assert set(before) == {"users/existing.png", "users/other.txt"}
    relay = _RecordingProxy(outside_s3.endpoint)
    try:
        profile = tmp_path / "protected-s3.toml"
        profile.write_text(
            f"""description = "local stack, object store outside devenv and protected"

[services.objectstore]
provider = "external"
endpoint = "{relay.endpoint}"
bucket = "{outside_s3.bucket}"
region = "{outside_s3.region}"
access_key_id = "${{T_PROTECTED_S3_ACCESS}}"
secret_access_key = "${{T_PROTECTED_S3_SECRET}}"
""",
            encoding="utf-8",
        )
        stack = make_stack(
            T_PROTECTED_S3_ACCESS=outside_s3.access_key,
            T_PROTECTED_S3_SECRET=outside_s3.secret_key,
        )
        plan = stack.cli("up", "--dry-run", "--profile", str(profile)).stdout
        assert "external objectstore: probe it first (read-only: protected provider)" in plan
        assert "create-bucket" not in plan
        up = stack.cli("up", "--profile", str(profile))
        store = stack.service("objectstore", "--profile", str(profile))
        assert store["healthy"] is True, store
        assert "read-only probe" in store["detail"]
        checked = stack.cli("check", "--profile", str(profile), "--json", check=False)
        ready = next(
            c for c in json.loads(checked.stdout)["checks"] if c["id"] == "objectstore.ready"
        )
        assert ready["ok"] is True, ready
        assert relay.seen, "the relay saw no request: the test would prove nothing"
        assert relay.writes() == [], up.stderr
        assert _objects(outside_s3) == before
    finally:
        relay.close()


# --- config errors: no engine needed ------------------------------------------------------


@pytest.fixture
def bare(tmp_path: Path) -> Stack:
    """A project of its own for commands that fail before they touch the engine."""
    return Stack(project=unique_project(), root=copy_project(tmp_path / "project"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _one_error_line(proc: Any, code: int) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return str(lines[0])


def test_typo_key_names_file_key_and_suggestion(bare: Stack, tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.toml", '[services.postgres]\nprovder = "external"\n')
    for command in ("config", "up"):
        line = _one_error_line(bare.cli(command, "--profile", str(path), check=False), 3)
        assert str(path) in line
        assert "services.postgres.provder" in line
        assert "did you mean" in line.lower()
        assert "provider" in line.replace("provder", "")
    assert not (bare.root / ".devenv" / bare.project / "state.json").exists()


def test_missing_variable_names_file_and_key(bare: Stack, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "missing.toml",
        '[services.postgres]\nprovider = "external"\nurl = "${T_DEVENV_UNSET_DATABASE_URL}"\n',
    )
    line = _one_error_line(bare.cli("config", "--profile", str(path), check=False), 3)
    assert str(path) in line
    assert "services.postgres.url" in line
    assert "T_DEVENV_UNSET_DATABASE_URL" in line


def test_unknown_provider_lists_the_allowed_ones(bare: Stack, tmp_path: Path) -> None:
    path = _write(tmp_path / "cloud.toml", '[services.objectstore]\nprovider = "cloud"\n')
    line = _one_error_line(bare.cli("config", "--profile", str(path), check=False), 3)
    assert str(path) in line
    assert "services.objectstore.provider" in line
    assert "cloud" in line
    assert "local" in line
    assert "external" in line


def test_extends_cycle_names_the_chain(bare: Stack, tmp_path: Path) -> None:
    first = _write(tmp_path / "first.toml", 'extends = "./second.toml"\n')
    _write(tmp_path / "second.toml", 'extends = "./first.toml"\n')
    line = _one_error_line(bare.cli("config", "--profile", str(first), check=False), 3)
    assert str(first) in line
    assert "extends" in line
    assert "cycle" in line
    assert "first" in line
    assert "second" in line


def test_bypass_with_protected_external_postgres_is_refused(bare: Stack, tmp_path: Path) -> None:
    password = secrets.token_hex(10)
    path = _write(
        tmp_path / "unsafe.toml",
        '[auth]\ndev_bypass = true\n\n[services.postgres]\nprovider = "external"\n'
        f'url = "postgres://someone:{password}@127.0.0.1:1/db"\n',
    )
    for command in ("config", "up"):
        line = _one_error_line(bare.cli(command, "--profile", str(path), check=False), 9)
        assert "auth.dev_bypass" in line
        assert str(path) in line
        assert "protected" in line
        assert password not in line
