"""`devenv check` and `devenv report` against real stacks: the healthy shared stack, the bypass
switched off, a backend without storage, a backend that exits at start, and a profile whose
Postgres is an external server."""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devenv.checks import ids
from tests.integration.conftest import Stack, copy_project

BYPASS_OFF = ("--set", "auth.dev_bypass=false")
ROUTE_AND_MIDDLEWARE = [i for i in ids.CONTRACT_CHECKS if i.startswith(("route.", "middleware."))]
SERVICE_IDS = list(ids.SERVICE_CHECKS)


def _check(stack: Stack, *args: str, expect_rc: int = 0) -> dict[str, Any]:
    proc = stack.cli("check", "--json", *args, check=False, timeout=300)
    assert proc.returncode == expect_rc, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _by_id(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in checks}


def _report(stack: Stack, *args: str, expect_rc: int = 0) -> dict[str, Any]:
    proc = stack.cli("report", "--json", *args, check=False, timeout=300)
    assert proc.returncode == expect_rc, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _phase(report: dict[str, Any], phase_id: str) -> dict[str, Any]:
    for phase in report["phases"]:
        if phase["id"] == phase_id:
            return dict(phase)
    raise AssertionError(f"no phase {phase_id} in report")


def _blocker(report: dict[str, Any], blocker_id: str) -> dict[str, Any]:
    for blocker in report["blockers"]:
        if blocker["id"] == blocker_id:
            return dict(blocker)
    raise AssertionError(f"no blocker {blocker_id} in report")


# --- the healthy shared stack -------------------------------------------------------------


def test_check_json_and_junit_all_pass(shared_stack: Stack, tmp_path: Path) -> None:
    junit = tmp_path / "reports" / "checks.xml"
    started = time.monotonic()
    data = _check(shared_stack, "--junit", str(junit))
    elapsed = time.monotonic() - started
    assert data["ok"] is True
    assert data["profile"] == "local"
    checks = _by_id(data["checks"])
    for wanted in [*SERVICE_IDS, *ROUTE_AND_MIDDLEWARE, ids.BLOB_ROUNDTRIP]:
        assert wanted in checks, f"{wanted} missing from {sorted(checks)}"
    bad = {c["id"]: c["detail"] for c in data["checks"] if not c["ok"] or c["skipped"]}
    assert not bad, bad
    assert data["failed"] == data["advisory_failed"] == []
    # the reference backend is held to the strict contract: nothing is advisory for it
    assert {c["level"] for c in data["checks"]} == {"required"}
    blob = checks[ids.BLOB_ROUNDTRIP]["detail"]
    assert blob.startswith("POST /api/blobs/upload 200 or 201"), blob
    assert "object in the bucket" in blob
    assert "object gone from the bucket" in blob
    assert checks[ids.ROUTE_AUTH_SESSION]["detail"].startswith(
        "GET /auth/session 200: user.id = ${dev_user_id}"
    )
    assert checks[ids.BACKEND_RUNNING]["detail"] == "container running"

    root = ET.parse(junit).getroot()  # noqa: S314 - written just now by devenv itself
    assert root.tag == "testsuite"
    assert root.get("failures") == "0"
    assert root.get("errors") == "0"
    assert int(root.get("tests", "0")) == len(data["checks"])
    names = {case.get("name") for case in root.iter("testcase")}
    assert names == set(checks)
    assert not list(root.iter("failure"))
    # whole CLI run, process start included; reported rather than asserted tightly
    sys.stderr.write(f"devenv check --json wall time: {elapsed:.2f}s\n")
    assert elapsed < 60


def test_check_with_scaffold_runs_cargo_on_the_backend(shared_stack: Stack) -> None:
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not on PATH")
    proc = shared_stack.cli("check", "--json", "--scaffold", timeout=1800)
    checks = _by_id(json.loads(proc.stdout)["checks"])
    for cid in ids.SCAFFOLD_CHECKS:
        assert checks[cid]["ok"] is True, checks[cid]
        assert checks[cid]["skipped"] is False, checks[cid]
    assert checks[ids.SCAFFOLD_CARGO_CLIPPY]["detail"] == "cargo clippy passes (0 warnings)"
    assert "2 stages" in checks[ids.SCAFFOLD_DOCKERFILE]["detail"]


def test_report_json_matches_the_seed_checkpoint(shared_stack: Stack) -> None:
    report = _report(shared_stack)
    assert report["schema_version"] == 2
    assert report["profile"] == "local"
    assert report["summary"]["failed"] == 0
    assert report["summary"]["regressed"] == []

    p11 = _phase(report, "11")
    assert p11["local"] == "can-proceed", p11
    assert p11["production"] == "blocked"
    assert "LATER-001" in p11["blocked_by"]["production"]
    assert p11["blocked_by"]["local"] == []

    p14 = _phase(report, "14")
    assert p14["local"] == "can-proceed", p14
    assert p14["production"] == "blocked"
    assert "LATER-003" in p14["blocked_by"]["production"]

    assert _phase(report, "08")["local"] == "complete"
    assert _phase(report, "23")["production"] == "blocked"
    p26 = _phase(report, "26")
    assert p26["local"] == "blocked"
    assert p26["production"] == "blocked"
    assert "LATER-011" in p26["blocked_by"]["local"]

    later = _blocker(report, "LATER-001")
    assert later["resolved"] is False
    assert later["by"] is None
    assert _blocker(report, "LATER-007")["resolved"] is True

    actions = {a["action"]: a for a in report["can_proceed_now"]}
    assert actions["Test migrations on local Postgres"]["status"] == "can-proceed"
    assert actions["Implement the R2 client against a local S3 stand-in"]["status"] == (
        "can-proceed"
    )
    production = actions["Run migrations on the production database"]
    assert production["status"] == "blocked"
    assert production["blocked_by"] == ["LATER-001"]


def test_report_markdown_file_has_the_seed_layout(shared_stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "checkpoint.md"
    proc = shared_stack.cli("report", "--format", "markdown", "-o", str(out), timeout=300)
    assert proc.stdout.strip() == ""  # the document went to the file only
    text = out.read_text(encoding="utf-8")
    headings = [
        "# Gap Checkpoint",
        "## Checkpoint Summary",
        "## Blocker Analysis by Category",
        "### Decision Required",
        "### External Console/Provisioning",
        "### Deployment/DNS/TLS",
        "### Repo-Auditable",
        "## Phase Gate Status",
        "## What Can Proceed Now",
    ]
    positions = [text.find(h) for h in headings]
    assert all(p >= 0 for p in positions), dict(zip(headings, positions, strict=True))
    assert positions == sorted(positions), "sections out of the seed's order"
    assert "```mermaid\ngraph TD" in text
    mermaid = text.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "P_11" in mermaid
    assert "LATER_001" in mermaid
    assert "| Run migrations on the production database | 11 | 🔴 Blocked (LATER-001) |" in text
    assert "**Profile:** `local`" in text
    # the generated credentials never reach the document
    for secret in shared_stack.state()["credentials"].values():
        assert secret not in text


# --- the bypass switched off ----------------------------------------------------------------


def test_check_passes_with_the_bypass_off(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.up(*BYPASS_OFF)
    data = _check(stack, *BYPASS_OFF)
    assert data["ok"] is True, data
    checks = _by_id(data["checks"])
    failed = {i: c["detail"] for i, c in checks.items() if not c["ok"]}
    assert not failed, failed
    assert "user is null" in checks[ids.ROUTE_AUTH_SESSION]["detail"]
    assert "401" in checks[ids.ROUTE_API]["detail"]
    assert "401" in checks[ids.ROUTE_ADMIN]["detail"]
    # what cannot be verified without a session is skipped, and says so
    assert checks[ids.BLOB_ROUNDTRIP]["skipped"] is True
    assert "bypass" in checks[ids.BLOB_ROUNDTRIP]["detail"]
    skipped = {i for i, c in checks.items() if c["skipped"]}
    assert skipped <= {ids.BLOB_ROUNDTRIP}, skipped

    # the same expectations checked against the bypass-on answers fail loudly
    wrong = _check(stack, expect_rc=1)
    wrong_checks = _by_id(wrong["checks"])
    assert wrong_checks[ids.ROUTE_AUTH_SESSION]["ok"] is False
    assert wrong_checks[ids.ROUTE_API]["ok"] is False
    assert "401" in wrong_checks[ids.ROUTE_API]["detail"]


# --- a deliberately broken route ----------------------------------------------------------


def test_backend_without_storage_fails_blob_roundtrip_and_blocks_phase_14(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    root = copy_project(tmp_path / "project")
    compose = root / "compose" / "compose.yaml"
    lines = compose.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith("STORAGE_ENDPOINT:")]
    assert len(kept) == len(lines) - 1, "expected exactly one STORAGE_ENDPOINT line"
    compose.write_text("".join(kept), encoding="utf-8")

    stack = make_stack(root)
    stack.up()
    env = dict(e.split("=", 1) for e in stack.container("backend").attrs["Config"]["Env"])
    assert "STORAGE_ENDPOINT" not in env

    proc = stack.cli("check", check=False, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "blob.roundtrip" in proc.stderr + proc.stdout

    data = _check(stack, expect_rc=1)
    checks = _by_id(data["checks"])
    blob = checks[ids.BLOB_ROUNDTRIP]
    assert blob["ok"] is False
    assert "503" in blob["detail"], blob
    failed = sorted(i for i, c in checks.items() if not c["ok"])
    assert failed == [ids.BLOB_ROUNDTRIP], failed

    report = _report(stack, expect_rc=1)
    p14 = _phase(report, "14")
    assert p14["local"] == "blocked", p14
    assert ids.BLOB_ROUNDTRIP in p14["blocked_by"]["local"]
    assert any("503" in line for line in p14["evidence"]["local"])
    # phase 11 does not need object storage and still proceeds
    assert _phase(report, "11")["local"] == "can-proceed"
    # 17 waits on 14 locally
    assert "14" in _phase(report, "17")["blocked_by"]["local"]
    actions = {a["action"]: a for a in report["can_proceed_now"]}
    assert actions["Implement the R2 client against a local S3 stand-in"]["status"] == "blocked"


# --- a backend that exits at start ----------------------------------------------------------

PLACEHOLDER_URL = "postgres://localhost/ignition"


def test_backend_exiting_at_start_is_one_root_cause_in_status_check_and_report(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    root = copy_project(tmp_path / "project")
    compose = root / "compose" / "compose.yaml"
    text = compose.read_text(encoding="utf-8")
    wanted = "DATABASE_URL: ${DATABASE_URL:-postgres://ignition:ignition@127.0.0.1:5432/ignition}"
    assert text.count(wanted) == 1
    # the placeholder URL both backends refuse at start
    compose.write_text(text.replace(wanted, f"DATABASE_URL: {PLACEHOLDER_URL}"), encoding="utf-8")
    stack = make_stack(root)
    up = stack.cli("up", "--timeout", "60", check=False, timeout=300)
    assert up.returncode == 7, up.stderr
    assert stack.container("backend").status == "exited"

    status = stack.cli("status", check=False)
    assert status.returncode == 1, status.stdout + status.stderr
    cause = next(line for line in status.stdout.splitlines() if line.startswith("  backend: "))
    assert cause.startswith("  backend: backend exited with code "), status.stdout
    assert "DATABASE_URL" in cause  # the backend's own first error line, not a probe's
    assert status.stderr.startswith("Unhealthy: backend: backend exited with code "), status.stderr
    assert "Traceback" not in status.stderr
    assert stack.status()["services"][0]["healthy"] is True  # postgres itself is fine

    check = stack.cli("check", check=False, timeout=300)
    assert check.returncode == 1, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    root_cause = next(line for line in lines if line.startswith("FAIL"))
    assert root_cause.split()[1] == ids.BACKEND_RUNNING, check.stdout
    assert "DATABASE_URL" in root_cause
    assert [line for line in lines if line.startswith("FAIL")] == [root_cause]
    assert "Connection refused" not in check.stdout
    for cid in ids.CONTRACT_CHECKS:
        line = next(line for line in lines if line.split()[1] == cid)
        assert line.split()[0] == "skip", line
        assert line.endswith("(backend.running failed)"), line
    assert check.stderr.strip().startswith("Checks failed: backend.running: backend exited with")

    data = _check(stack, expect_rc=1)
    assert data["failed"] == [ids.BACKEND_RUNNING]
    skipped = [c for c in data["checks"] if c["skipped"]]
    assert {c["cause"] for c in skipped} == {ids.BACKEND_RUNNING}
    assert {c["id"] for c in skipped} >= {ids.BACKEND_HEALTH, *ids.CONTRACT_CHECKS}

    report = _report(stack, expect_rc=1)
    assert report["summary"]["regressed"] == ["08"]
    p08 = _phase(report, "08")
    assert (p08["local"], p08["blocked_by"]["local"]) == ("regressed", [ids.BACKEND_RUNNING])
    for phase_id in ("11", "14", "17"):
        blocked = _phase(report, phase_id)["blocked_by"]["local"]
        assert ids.BACKEND_RUNNING in blocked, (phase_id, blocked)
        assert not set(blocked) & set(ids.CONTRACT_CHECKS), (phase_id, blocked)

    table = stack.cli("report", check=False, timeout=300)
    assert table.returncode == 1
    row = next(line for line in table.stdout.splitlines() if line.startswith("  08 Backend"))
    assert "✗ regressed" in row, row
    out = tmp_path / "checkpoint.md"
    doc = stack.cli("report", "--format", "markdown", "-o", str(out), "--exit-zero", timeout=300)
    assert doc.returncode == 0
    assert "| 08 - Backend scaffold | 🟠 Regressed (backend.running) |" in out.read_text("utf-8")


# --- an external Postgres -----------------------------------------------------------------


@pytest.fixture
def external_postgres() -> Iterator[str]:
    """A Postgres server devenv does not manage, standing in for a provisioned one."""
    import docker

    engine = docker.from_env(version="auto")
    password = uuid.uuid4().hex
    container = engine.containers.run(
        "devenv-standin/postgres:15",
        name=f"t-extpg-{uuid.uuid4().hex[:8]}",
        detach=True,
        environment={
            "POSTGRES_USER": "ext",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": "ignition_ext",
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        url = f"postgres://ext:{password}@127.0.0.1:{port}/ignition_ext"
        _wait_for_sql(url, container)
        yield url
    finally:
        container.remove(force=True, v=True)


def _wait_for_sql(url: str, container: Any, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            pytest.fail(f"external Postgres exited: {container.logs(tail=20).decode()}")
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.Error as exc:
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        time.sleep(0.25)  # poll interval, bounded by the deadline
    pytest.fail(f"external Postgres not answering within {deadline_s:g}s: {last}")


@pytest.mark.parametrize("protected", [False, True], ids=["unprotected", "protected"])
def test_external_postgres_resolves_later_001(
    make_stack: Callable[..., Stack], tmp_path: Path, external_postgres: str, protected: bool
) -> None:
    root = copy_project(tmp_path / "project")
    (root / "profiles" / "t-external.toml").write_text(
        'description = "test: external Postgres"\n'
        'extends = "local"\n'
        "\n"
        "[services.postgres]\n"
        'provider = "external"\n'
        'url = "${T_EXTERNAL_DATABASE_URL}"\n'
        f"protected = {str(protected).lower()}\n",
        encoding="utf-8",
    )
    stack = make_stack(root, T_EXTERNAL_DATABASE_URL=external_postgres)
    profile = ("--profile", "t-external")
    stack.up(*profile)
    services = {c.labels["io.devenv.service"] for c in stack.containers()}
    assert "postgres" not in services, services

    # the backend migrated the external server
    with psycopg.connect(external_postgres, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM _sqlx_migrations WHERE success").fetchone()
    assert row is not None
    assert row[0] >= 1

    report = _report(stack, *profile)
    assert report["profile"] == "t-external"
    checks = _by_id(report["checks"])
    assert checks[ids.POSTGRES_READY]["ok"] is True
    assert checks[ids.POSTGRES_MIGRATIONS]["ok"] is True
    failed = {i: c["detail"] for i, c in checks.items() if not c["ok"]}
    assert not failed, failed
    # a protected provider turns the dev bypass off: no session, no blob round trip
    assert checks[ids.BLOB_ROUNDTRIP]["skipped"] is protected
    assert ("user is null" in checks[ids.ROUTE_AUTH_SESSION]["detail"]) is protected
    with psycopg.connect(external_postgres, connect_timeout=10) as conn:
        seeded = conn.execute("SELECT count(*) FROM users WHERE email = 'dev@localhost'").fetchone()
    assert seeded is not None
    assert seeded[0] == (0 if protected else 1), "the dev user is seeded only when unprotected"
    later = _blocker(report, "LATER-001")
    assert later["resolved"] is True, later
    assert later["by"] is not None
    assert "t-external" in later["by"]
    assert "postgres.running, postgres.ready" in later["by"]

    p11 = _phase(report, "11")
    assert "LATER-001" not in p11["blocked_by"]["production"], p11
    assert p11["local"] == "can-proceed"
    assert "LATER-001" not in _phase(report, "23")["blocked_by"]["production"]
    # the other LATER items stay open
    assert _blocker(report, "LATER-003")["resolved"] is False
    actions = {a["action"]: a for a in report["can_proceed_now"]}
    assert actions["Run migrations on the production database"]["status"] == "can-proceed"
    # the password of the external server never reaches the report
    password = external_postgres.split(":")[2].split("@", maxsplit=1)[0]
    assert password not in json.dumps(report)
