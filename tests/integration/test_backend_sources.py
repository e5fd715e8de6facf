"""Pointing devenv at other backend checkouts on the real engine: a database that belongs to
another source is refused, a checkout without Cargo.lock or Dockerfile.runtime still builds,
and extra environment reaches the backend container."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import psycopg
import pytest

from devenv.images.build import _target_lock, cargo_target_dir
from devenv.probes.postgres import PostgresProbe
from devenv.probes.waiting import wait_ready
from devenv.runtime.base import LABEL_SOURCE_PATH
from devenv.state import cache_dir
from tests.integration.conftest import REPO, Stack
from tests.integration.test_profiles_live import (
    READY_TIMEOUT,
    OutsidePostgres,
    _published_port,
    _remove,
    _run_outside,
)

BACKEND = REPO / "backend"
COPIES_TARGET = "cargo-target-test-copies"


def _engine() -> Any:
    return docker.from_env(version="auto")


@pytest.fixture(scope="session")
def copies_target() -> Path:
    """One cargo target dir for every backend copy the tests build, kept between runs.

    Never the reference backend's: a copy's build writes release/ignition-api too. Seeded
    once from the reference's release build, so only what differs compiles."""
    target = cache_dir() / COPIES_TARGET
    shared = cargo_target_dir(BACKEND, BACKEND) / "release"
    if not (target / "release").is_dir() and shared.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        with _target_lock(shared.parent):
            subprocess.run(["cp", "-a", str(shared), str(target / "release")], check=True)
    return target


DEV_REPOSITORY, DEV_TAG = "devenv-standin/backend", "dev"


@pytest.fixture
def built_images(tmp_path: Path) -> Iterator[None]:
    """Backend images the test's copies produced (labelled with a path under tmp_path).

    Request it before make_stack: it must clean up after the stacks' containers are gone. A
    copy of the whole repository builds its `backend/` as the reference backend, which moves
    the shared `:dev` tag to that copy's image: the tag goes back where it was before the copy's
    images are removed, so other tests (and the bench) still find the checkout's own build."""
    engine = _engine()
    try:
        dev: str | None = engine.images.get(f"{DEV_REPOSITORY}:{DEV_TAG}").id
    except docker.errors.ImageNotFound:
        dev = None
    yield
    if dev is not None:  # (unless the build it named was pruned meanwhile)
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.get(dev).tag(DEV_REPOSITORY, DEV_TAG)
    for image in engine.images.list(filters={"label": LABEL_SOURCE_PATH}):
        if image.labels.get(LABEL_SOURCE_PATH, "").startswith(str(tmp_path.resolve())):
            engine.images.remove(image.id, force=True)


def _copies_env(target: Path) -> dict[str, str]:
    # Incremental state is kept per crate path: a new temporary copy each run would only add
    # to it, never reuse it.
    return {"CARGO_TARGET_DIR": str(target), "CARGO_INCREMENTAL": "0"}


def _copy_backend(dest: Path) -> Path:
    shutil.copytree(BACKEND, dest, ignore=shutil.ignore_patterns("target"))
    return dest


def _profile(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def _one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "[" not in line[:1]]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _migrations(stack: Stack) -> list[tuple[int, str]]:
    with psycopg.connect(stack.database_url(), connect_timeout=10) as conn:
        rows = conn.execute("SELECT version, description FROM _sqlx_migrations ORDER BY 1")
        return [(int(v), str(d)) for v, d in rows.fetchall()]


def _probe_rows(stack: Stack) -> list[str]:
    with psycopg.connect(stack.database_url(), connect_timeout=10) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM t_sources ORDER BY v").fetchall()]


def _states(stack: Stack) -> dict[str, tuple[str, str]]:
    return {c.labels["io.devenv.service"]: (c.id, c.status) for c in stack.containers()}


def _claims() -> dict[str, Any]:
    path = cache_dir() / "image-claims.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return data


# --- (a) a database that belongs to another backend source ---------------------------------


def test_another_source_s_database_is_refused_and_a_separate_project_works(
    built_images: None, make_stack: Callable[..., Stack], tmp_path: Path, copies_target: Path
) -> None:
    first = make_stack(**_copies_env(copies_target))
    first.up()
    with psycopg.connect(first.database_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t_sources (v text)")
        conn.execute("INSERT INTO t_sources VALUES ('kept')")
    applied = _migrations(first)
    assert [v for v, _ in applied] == [20260101000001, 20260101000002]
    volumes = sorted(v.name for v in first.volumes())
    running = _states(first)

    copy = _copy_backend(tmp_path / "copy")
    migrations = copy / "migrations"
    (migrations / "20260101000002_blobs.sql").rename(migrations / "20260101000003_blobs.sql")
    profile = _profile(tmp_path / "copy.toml", '[services.backend]\ncontext = "copy"\n')

    # Postgres runs: the rows are read at planning and the refusal comes before any build.
    for args in (("up", "--dry-run"), ("up",)):
        proc = first.cli(*args, "--profile", str(profile), check=False)
        line = _one_line(proc, 9)
        assert line.startswith("Refused: backend source ")
        assert str(copy.resolve()) in line
        assert f"database of project {first.project}" in line
        assert "not in the source: 20260101000002" in line
        assert "applied 20260101000001 users sessions roles, 20260101000002 blobs" in line
        assert "knows 20260101000001 users sessions roles, 20260101000003 blobs" in line
        assert "--project NAME" in line
        assert "devenv down --volumes" in line
        assert "cargo" not in proc.stderr
    assert _states(first) == running
    assert sorted(v.name for v in first.volumes()) == volumes
    assert _migrations(first) == applied
    assert _probe_rows(first) == ["kept"]
    checked = json.loads(
        first.cli("check", "--json", "--profile", str(profile), check=False).stdout
    )
    verdict = next(c for c in checked["checks"] if c["id"] == "postgres.migrations")
    assert verdict["ok"] is False
    assert "not in the source: 20260101000002" in verdict["detail"]

    # The way out the refusal names: the copy in a stack of its own.
    second = make_stack(**_copies_env(copies_target))
    started = time.monotonic()
    second.cli("up", "--profile", str(profile), timeout=1800)
    sys.stderr.write(f"\n[timing] backend copy built and up in {time.monotonic() - started:.0f}s\n")
    assert [v for v, _ in _migrations(second)] == [20260101000001, 20260101000003]
    ok = json.loads(second.cli("check", "--json", "--profile", str(profile)).stdout)
    verdict = next(c for c in ok["checks"] if c["id"] == "postgres.migrations")
    assert verdict["ok"] is True
    assert f"all known to {copy.resolve()}" in verdict["detail"]
    claims = _claims()
    assert claims[first.project]["source"] == str(BACKEND.resolve())
    assert claims[second.project]["source"] == str(copy.resolve())
    assert claims[first.project]["image"] != claims[second.project]["image"]

    # Postgres stopped: the plan says it will check, and up checks before starting the backend.
    first.cli("down")
    dry = first.cli("up", "--dry-run", "--profile", str(profile))
    verify = [line for line in dry.stdout.splitlines() if line.startswith("verify")]
    assert verify == [
        "verify-migrations migrations            Postgres is not running yet: check its "
        f"migrations against {copy.resolve()} before the backend starts"
    ]
    line = _one_line(first.cli("up", "--profile", str(profile), check=False), 9)
    assert "not in the source: 20260101000002" in line
    services = {c.labels["io.devenv.service"]: c.status for c in first.containers()}
    assert "backend" not in services, services
    assert services["postgres"] == "running"
    assert sorted(v.name for v in first.volumes()) == volumes
    assert _migrations(first) == applied
    assert _probe_rows(first) == ["kept"]

    # Back on its own source, the first project carries on with its data.
    first.up()
    assert _probe_rows(first) == ["kept"]
    first.destroy()
    assert first.project not in _claims()


# --- (b) a workspace checkout without Cargo.lock or Dockerfile.runtime ----------------------


def _workspace_copy(root: Path) -> Path:
    """The real checkout's shape: a workspace, the API in crates/api, migrations at the root,
    no Cargo.lock (as in the scaffold commit) and no Dockerfile.runtime."""
    crate = _copy_backend(root / "crates" / "api")
    (crate / "Cargo.lock").unlink()
    (crate / "Dockerfile.runtime").unlink()
    manifest = (crate / "Cargo.toml").read_text(encoding="utf-8")
    package, _, profiles = manifest.partition("[profile.dev]")
    (crate / "Cargo.toml").write_text(package, encoding="utf-8")
    (root / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["crates/*"]\nresolver = "3"\n\n[profile.dev]' + profiles,
        encoding="utf-8",
    )
    (crate / "migrations").rename(root / "migrations")
    (crate / "migrations").symlink_to(Path("..") / ".." / "migrations")
    return root


def test_workspace_checkout_without_lock_file_builds_on_devenv_s_runtime(
    built_images: None, make_stack: Callable[..., Stack], tmp_path: Path, copies_target: Path
) -> None:
    checkout = _workspace_copy(tmp_path / "app")
    stack = make_stack(**_copies_env(copies_target))

    forced = _profile(
        tmp_path / "forced.toml", '[services.backend]\ncontext = "app"\nlocked = true\n'
    )
    line = _one_line(stack.cli("up", "--profile", str(forced), check=False), 5)
    assert f"{checkout.resolve()} has no Cargo.lock" in line
    assert "commit a Cargo.lock" in line

    profile = _profile(
        tmp_path / "app.toml",
        '[services.backend]\ncontext = "app"\npackage = "ignition-api"\nbinary = "ignition-api"\n',
    )
    started = time.monotonic()
    up = stack.cli("up", "--profile", str(profile), timeout=1800)
    took = time.monotonic() - started
    sys.stderr.write(f"\n[timing] workspace copy without Cargo.lock built and up in {took:.0f}s\n")
    assert f"{checkout.resolve()} has no Cargo.lock: building unlocked" in up.stderr
    assert f"building the backend in {checkout.resolve()} with cargo" in up.stderr
    command = next(line for line in up.stderr.splitlines() if "cargo build (backend):" in line)
    assert "cargo build --release -p" in command
    assert "--locked" not in command
    assert f"{checkout.resolve()} has no Dockerfile.runtime: packaging on devenv's" in up.stderr
    assert [v for v, _ in _migrations(stack)] == [20260101000001, 20260101000002]

    image = stack.container("backend").image
    assert image.labels[LABEL_SOURCE_PATH] == str(checkout.resolve())
    packages = _engine().containers.run(
        image.id,
        entrypoint=["dpkg-query", "-W", "-f", "${Package} ${Status}\\n"],
        command=["libssl3", "ca-certificates"],
        remove=True,
    )
    assert b"libssl3 install ok installed" in packages
    assert b"ca-certificates install ok installed" in packages

    # cargo wrote a Cargo.lock: the next up builds locked (nothing to compile), then settles.
    assert (checkout / "Cargo.lock").is_file()
    again = stack.cli("up", "--profile", str(profile))
    assert "has no Cargo.lock" not in again.stderr
    command = next(line for line in again.stderr.splitlines() if "cargo build (backend)" in line)
    assert "--locked" in command
    settled = json.loads(stack.cli("up", "--json", "--profile", str(profile)).stdout)
    assert settled["noop"] is True, settled["plan"]


# --- (d) extra backend environment -----------------------------------------------------------


def _env(container: Any) -> dict[str, str]:
    container.reload()
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


def test_extra_env_reaches_the_backend_and_owned_keys_are_refused(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    secret = "gsecret-" + os.urandom(6).hex()
    body = (
        '[services.backend.env]\nRUST_LOG = "{level}"\n'
        'AUTH_OAUTH_GOOGLE_CLIENT_ID = "google-id"\n'
        'AUTH_OAUTH_GOOGLE_CLIENT_SECRET = "${{T_GOOGLE_SECRET}}"\n'
    )
    profile = _profile(tmp_path / "env.toml", body.format(level="debug"))
    stack = make_stack(T_GOOGLE_SECRET=secret)
    up = stack.cli("up", "--profile", str(profile))
    assert secret not in up.stdout + up.stderr
    env = _env(stack.container("backend"))
    assert env["RUST_LOG"] == "debug"
    assert env["AUTH_OAUTH_GOOGLE_CLIENT_ID"] == "google-id"
    assert env["AUTH_OAUTH_GOOGLE_CLIENT_SECRET"] == secret
    providers = httpx.get(stack.backend_url() + "/auth/providers", timeout=10)
    assert providers.status_code == 200

    status = stack.status("--profile", str(profile))
    backend = next(s for s in status["services"] if s["name"] == "backend")
    assert backend["env"] == {
        "AUTH_OAUTH_GOOGLE_CLIENT_ID": "google-id",
        "AUTH_OAUTH_GOOGLE_CLIENT_SECRET": "****",
        "RUST_LOG": "debug",
    }
    for command in (
        ("status", "--profile", str(profile)),
        ("config", "--profile", str(profile)),
        ("config", "--json", "--profile", str(profile)),
        ("logs", "backend"),
    ):
        shown = stack.cli(*command)
        assert secret not in shown.stdout + shown.stderr, command

    # A changed value recreates the backend alone and names the key.
    profile.write_text(body.format(level="info"), encoding="utf-8")
    before = stack.container("postgres").id
    changed = json.loads(stack.cli("up", "--json", "--profile", str(profile)).stdout)
    steps = {(s["kind"], s["target"]): s for s in changed["plan"]}
    assert steps["recreate", "backend"]["cause"] == "config changed: env RUST_LOG"
    assert ("keep", "postgres") in steps
    assert stack.container("postgres").id == before
    assert _env(stack.container("backend"))["RUST_LOG"] == "info"

    # A variable devenv owns is a config error naming the file and key; nothing changes.
    running = _states(stack)
    forbidden = _profile(
        tmp_path / "forbidden.toml",
        '[services.backend.env]\nDATABASE_URL = "postgres://elsewhere/db"\n',
    )
    line = _one_line(stack.cli("up", "--profile", str(forbidden), check=False), 3)
    assert str(forbidden) in line
    assert "services.backend.env.DATABASE_URL" in line
    assert "set by devenv" in line
    assert _states(stack) == running


# --- an external Postgres is judged the same way, read-only ----------------------------------


@pytest.fixture
def external_postgres(images: None) -> Iterator[OutsidePostgres]:
    """A Postgres devenv did not start (no devenv labels), on a random loopback port."""
    password = os.urandom(12).hex()
    container = _run_outside(
        "devenv-standin/postgres:15",
        "t-extpg",
        environment={"POSTGRES_USER": "ext", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "ext"},
        ports={"5432/tcp": ("127.0.0.1", None)},
    )
    try:
        url = f"postgres://ext:{password}@127.0.0.1:{_published_port(container, '5432/tcp')}/ext"
        ready = wait_ready(PostgresProbe(url=url, display="external"), timeout=READY_TIMEOUT)
        assert ready.ok, ready.detail
        yield OutsidePostgres(url=url, password=password)
    finally:
        _remove(container)


def test_external_database_of_another_source_is_refused_without_writing(
    make_stack: Callable[..., Stack], external_postgres: OutsidePostgres
) -> None:
    outside_postgres = external_postgres
    foreign = hashlib.sha384(b"another source's schema").digest()
    with psycopg.connect(outside_postgres.url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,"
            " installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,"
            " checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, "
            "execution_time) VALUES (1, 'schema', true, %s, 1)",
            (foreign,),
        )
    stack = make_stack(DEVENV_HYBRID_DATABASE_URL=outside_postgres.url)
    for args in (("up", "--dry-run"), ("up",)):
        proc = stack.cli(*args, "--profile", "hybrid", check=False)
        line = _one_line(proc, 9)
        assert "does not match the external database" in line
        assert "not in the source: 1" in line
        assert "applied 1 schema" in line
        assert str(BACKEND.resolve()) in line
        assert "services.postgres.url" in line
        assert "--volumes" not in line
        assert outside_postgres.password not in proc.stdout + proc.stderr
    assert stack.containers() == []
    with psycopg.connect(outside_postgres.url, connect_timeout=10) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        rows = conn.execute("SELECT version, checksum FROM _sqlx_migrations").fetchall()
    assert tables == [("_sqlx_migrations",)]
    assert rows == [(1, foreign)]


def test_migrations_check_counts_rows_when_the_source_is_unknown(
    shared_stack: Stack, tmp_path: Path
) -> None:
    image = _profile(
        tmp_path / "image.toml", '[services.backend]\nimage = "devenv-standin/backend:dev"\n'
    )
    checked = json.loads(
        shared_stack.cli("check", "--json", "--profile", str(image), check=False).stdout
    )
    verdict = next(c for c in checked["checks"] if c["id"] == "postgres.migrations")
    assert verdict["ok"] is True
    assert verdict["detail"] == (
        "2 applied, latest 20260101000002 (not compared: the backend runs image "
        "devenv-standin/backend:dev; services.backend.migrations would name its migrations)"
    )
    named = _profile(
        tmp_path / "named.toml",
        '[services.backend]\nimage = "devenv-standin/backend:dev"\n'
        f'migrations = "{BACKEND / "migrations"}"\n',
    )
    checked = json.loads(
        shared_stack.cli("check", "--json", "--profile", str(named), check=False).stdout
    )
    verdict = next(c for c in checked["checks"] if c["id"] == "postgres.migrations")
    assert verdict["ok"] is True
    assert verdict["detail"].startswith("2 applied, latest 20260101000002, all known to ")
