"""The terminal table: aligned, marked, within 100 columns, nothing dropped."""

from __future__ import annotations

from devenv.checks import ids
from devenv.model import CheckResult, Profile
from devenv.phases.evaluate import evaluate
from devenv.phases.registry import load_registry
from devenv.report.table import render_table

LOCAL = Profile(name="local", path=None, bindings={}, dev_bypass=True)


def test_table_fits_100_columns_and_marks_verdicts() -> None:
    results = [CheckResult(cid, ids.check_name(cid), True, "ok") for cid in ids.ALL_CHECK_IDS]
    at = {c.id: i for i, c in enumerate(results)}
    results[at[ids.POSTGRES_READY]] = CheckResult(
        ids.POSTGRES_READY, "Postgres", False, "expected SELECT 1, " + "x" * 120
    )
    results[-1] = CheckResult(ids.SCAFFOLD_DOCKERFILE, "Docker", True, "skipped: no source", True)
    text = render_table(
        evaluate(load_registry(), LOCAL, results), profile_name="local", checks=results
    )
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[0] == "Profile: local"
    assert any(line.startswith("  ✗  postgres.ready") for line in lines)
    assert any(line.startswith("  -  scaffold.dockerfile") for line in lines)
    phase_11 = next(line for line in lines if line.startswith("  11 Database"))
    assert "✗ blocked" in phase_11
    assert "local: postgres.ready" in phase_11
    # wrapped, not truncated: every blocker of phase 26 is still printed
    start = next(i for i, line in enumerate(lines) if line.startswith("  26 Cutover"))
    tail = " ".join(line.strip() for line in lines[start : start + 6])
    assert "LATER-011" in tail.split("prod:", 1)[1]
    assert "x" * 40 in text.replace("\n", "").replace(" ", "")


def test_table_marks_advisory_failures_root_causes_and_regressions() -> None:
    results = [CheckResult(cid, ids.check_name(cid), True, "ok") for cid in ids.ALL_CHECK_IDS]
    at = {c.id: i for i, c in enumerate(results)}
    results[at[ids.BACKEND_RUNNING]] = CheckResult(
        ids.BACKEND_RUNNING, "Backend running", False, "backend exited with code 1"
    )
    results[at[ids.ROUTE_ROOT]] = CheckResult(
        ids.ROUTE_ROOT, "GET /", True, "skipped: backend exited", True, cause=ids.BACKEND_RUNNING
    )
    results[at[ids.ROUTE_API_FOREIGN_HOST]] = CheckResult(
        ids.ROUTE_API_FOREIGN_HOST, "Host", False, "bypass accepted Host x", level="advisory"
    )
    text = render_table(
        evaluate(load_registry(), LOCAL, results), profile_name="local", checks=results
    )
    lines = text.splitlines()
    assert "  ✗  backend.running             backend exited with code 1" in lines
    assert "  -  route.root                  skipped: backend.running failed" in lines
    assert "  !  route.api.foreign_host      advisory: bypass accepted Host x" in lines
    phase_08 = next(line for line in lines if line.startswith("  08 Backend"))
    assert "✗ regressed" in phase_08
    assert "local: backend.running" in phase_08
