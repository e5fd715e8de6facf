"""JSON report golden files for the seed situation, a failing Postgres and an external Postgres."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devenv.checks import ids
from devenv.model import CheckResult, Profile, ProviderBinding
from devenv.phases.evaluate import evaluate
from devenv.phases.registry import load_registry
from devenv.report.json_report import REPORT_SCHEMA, dumps, to_json

GOLDEN = Path(__file__).parent / "golden"
WHEN = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)

DETAILS = {
    ids.POSTGRES_READY: "SELECT 1 answered",
    ids.POSTGRES_MIGRATIONS: "4 rows in _sqlx_migrations",
    ids.OBJECTSTORE_READY: "put/get/delete on bucket ignition",
    ids.BACKEND_HEALTH: "GET /health 200 healthy",
    ids.SCAFFOLD_CARGO_CLIPPY: "cargo clippy passes (17 warnings)",
}


def seed_checks(**failures: str) -> list[CheckResult]:
    out = []
    for cid in reversed(ids.ALL_CHECK_IDS):  # reversed: the report must restore the order
        failed = failures.get(cid.replace(".", "_"))
        detail = failed or DETAILS.get(cid, "ok")
        out.append(CheckResult(cid, ids.check_name(cid), ok=failed is None, detail=detail))
    return out


def report(profile: Profile, checks: list[CheckResult]) -> str:
    evaluation = evaluate(load_registry(), profile, checks)
    return dumps(to_json(evaluation, profile_name=profile.name, checks=checks, generated_at=WHEN))


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("DEVENV_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"regenerate with DEVENV_UPDATE_GOLDEN=1: {name}"
    )


LOCAL = Profile(name="local", path=None, bindings={}, dev_bypass=True)
HYBRID = Profile(
    name="hybrid",
    path=None,
    bindings={
        "postgres": ProviderBinding(
            "postgres",
            "external",
            protected=True,
            settings={"url": "postgres://app:s3cret@db.internal/ignition"},
            secret_keys=frozenset({"url"}),
        )
    },
    dev_bypass=False,
)


def test_seed_local_golden() -> None:
    text = report(LOCAL, seed_checks())
    assert_golden("seed_local.json", text)
    data = json.loads(text)
    assert data["schema_version"] == REPORT_SCHEMA
    assert [c["id"] for c in data["checks"]] == list(ids.ALL_CHECK_IDS)
    assert [a["status"] for a in data["can_proceed_now"]] == ["can-proceed"] * 4 + ["blocked"] * 2


def test_postgres_down_golden() -> None:
    text = report(LOCAL, seed_checks(postgres_ready="expected SELECT 1, got connection refused"))
    assert_golden("postgres_down.json", text)
    phase_11 = next(p for p in json.loads(text)["phases"] if p["id"] == "11")
    assert phase_11["local"] == "blocked"
    assert phase_11["blocked_by"]["local"] == ["postgres.ready"]


def test_external_postgres_golden_resolves_later_001_without_leaking_secrets() -> None:
    text = report(HYBRID, seed_checks())
    assert_golden("external_postgres.json", text)
    data = json.loads(text)
    later_001 = next(b for b in data["blockers"] if b["id"] == "LATER-001")
    assert later_001["resolved"] is True
    assert later_001["by"].startswith("profile hybrid: postgres external")
    assert "s3cret" not in text


def test_backend_exited_golden_regresses_08_with_one_root_cause() -> None:
    dead = "backend exited with code 101: panicked at path_router.rs:138:17: Path segments"
    checks = [
        CheckResult(c.id, c.name, False, dead)
        if c.id == ids.BACKEND_RUNNING
        else CheckResult(c.id, c.name, True, f"skipped: {dead}", True, cause=ids.BACKEND_RUNNING)
        if c.id == ids.BACKEND_HEALTH or c.id in ids.CONTRACT_CHECKS
        else c
        for c in seed_checks()
    ]
    text = report(LOCAL, checks)
    assert_golden("backend_exited.json", text)
    data = json.loads(text)
    assert data["summary"]["failed"] == 1
    assert data["summary"]["regressed"] == ["08"]
    phase_08 = next(p for p in data["phases"] if p["id"] == "08")
    assert (phase_08["local"], phase_08["blocked_by"]["local"]) == (
        "regressed",
        ["backend.running"],
    )
    skipped = [c for c in data["checks"] if c["skipped"]]
    assert {c["cause"] for c in skipped} == {"backend.running"}


@pytest.mark.parametrize(
    "name",
    ["seed_local.json", "postgres_down.json", "external_postgres.json", "backend_exited.json"],
)
def test_golden_files_are_valid_json_with_a_schema_version(name: str) -> None:
    assert (
        json.loads((GOLDEN / name).read_text(encoding="utf-8"))["schema_version"] == REPORT_SCHEMA
    )
