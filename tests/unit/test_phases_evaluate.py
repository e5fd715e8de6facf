"""Phase evaluation on the shipped registry: the seed verdicts and how evidence moves them."""

from __future__ import annotations

from devenv.checks import ids
from devenv.model import CheckResult, Profile, ProviderBinding
from devenv.phases.evaluate import Evaluation, evaluate
from devenv.phases.registry import load_registry, parse_registry

LOCAL = Profile(name="local", path=None, bindings={}, dev_bypass=True)
STAGING = Profile(
    name="staging",
    path=None,
    bindings={"postgres": ProviderBinding("postgres", "external", protected=True)},
    dev_bypass=False,
)


def all_ok() -> list[CheckResult]:
    return [
        CheckResult(cid, ids.check_name(cid), ok=True, detail="ok") for cid in ids.ALL_CHECK_IDS
    ]


def with_failure(check_id: str, detail: str) -> list[CheckResult]:
    return [
        CheckResult(c.id, c.name, ok=False, detail=detail) if c.id == check_id else c
        for c in all_ok()
    ]


def seed(profile: Profile = LOCAL, checks: list[CheckResult] | None = None) -> Evaluation:
    return evaluate(load_registry(), profile, all_ok() if checks is None else checks)


def test_seed_situation() -> None:
    result = seed()
    for done in ("06", "07", "frontend-move", "admin-move"):
        assert result.phase(done).local.status == "complete"
        assert result.phase(done).production.status == "complete"
    p08 = result.phase("08")
    assert (p08.local.status, p08.production.status) == ("complete", "blocked")
    assert p08.production.blocked_by == ("LATER-001", "LATER-002")
    p11 = result.phase("11")
    assert p11.local.status == "can-proceed"
    assert "LATER-001" in p11.production.blocked_by
    p14 = result.phase("14")
    assert p14.local.status == "can-proceed"
    assert "LATER-003" in p14.production.blocked_by
    p23 = result.phase("23")
    assert p23.production.status == "blocked"
    assert {"LATER-004", "LATER-005", "LATER-009", "LATER-010"} <= set(p23.production.blocked_by)
    p26 = result.phase("26")
    assert p26.local.status == "blocked"
    assert p26.local.blocked_by == ("LATER-011",)
    assert any("no local stand-in" in line for line in p26.local.evidence)


def test_seed_actions_match_the_checkpoint_table() -> None:
    rows = [(a.phase, a.status, a.blocked_by, a.note) for a in seed().actions]
    assert rows == [
        ("11", "can-proceed", (), ""),
        ("11", "can-proceed", (), ""),
        ("11", "can-proceed", (), "Docker"),
        ("14", "can-proceed", (), "local"),
        ("11", "blocked", ("LATER-001",), ""),
        ("08", "blocked", ("LATER-001",), ""),
    ]


def test_failing_postgres_blocks_phase_11_locally_and_names_the_check() -> None:
    result = seed(checks=with_failure(ids.POSTGRES_READY, "expected SELECT 1, got refused"))
    p11 = result.phase("11")
    assert p11.local.status == "blocked"
    assert ids.POSTGRES_READY in p11.local.blocked_by
    assert "postgres.ready failed: expected SELECT 1, got refused" in p11.local.evidence
    # downstream phases are held by the blocked prerequisite, not by the check itself
    assert result.phase("18").local.blocked_by == ("11", ids.POSTGRES_READY)
    assert result.phase("08").local.status == "complete"
    assert result.actions[0].status == "blocked"


def test_skipped_checks_are_not_evidence_and_block() -> None:
    checks = [
        CheckResult(c.id, c.name, ok=True, detail="skipped: no bypass", skipped=True)
        if c.id == ids.BLOB_ROUNDTRIP
        else c
        for c in all_ok()
    ]
    p14 = seed(checks=checks).phase("14")
    assert p14.local.status == "blocked"
    assert p14.local.blocked_by == ("blob.roundtrip",)
    assert "blob.roundtrip not verified (skipped): skipped: no bypass" in p14.local.evidence


def test_external_postgres_with_passing_checks_resolves_later_001() -> None:
    result = seed(profile=STAGING)
    blocker = result.blocker("LATER-001")
    assert blocker.resolved
    assert blocker.by == (
        "profile staging: postgres external, checks postgres.running, postgres.ready, "
        "postgres.migrations ok"
    )
    p11 = result.phase("11")
    assert "LATER-001" not in p11.production.blocked_by
    assert p11.production.blocked_by == ("08",)  # 08 still waits on LATER-002
    assert result.phase("08").production.blocked_by == ("LATER-002",)
    run_migrations = result.actions[4]
    assert (run_migrations.status, run_migrations.blocked_by) == ("can-proceed", ())


def test_external_postgres_with_a_failed_check_stays_unresolved() -> None:
    result = seed(profile=STAGING, checks=with_failure(ids.POSTGRES_MIGRATIONS, "0 rows"))
    assert not result.blocker("LATER-001").resolved
    assert "LATER-001" in result.phase("11").production.blocked_by
    assert any(
        "postgres external but postgres.migrations not ok" in line
        for line in result.phase("11").production.evidence
    )


def test_external_binding_without_any_checks_is_not_enough() -> None:
    assert not seed(profile=STAGING, checks=[]).blocker("LATER-001").resolved


def test_no_checks_at_all_are_reported_as_not_run() -> None:
    p11 = seed(checks=[]).phase("11")
    assert any(line.startswith("checks not run: postgres.ready") for line in p11.local.evidence)


def backend_dead() -> list[CheckResult]:
    """What run_checks yields when the backend container exited: one failed root cause, and
    every check needing the backend skipped with it."""
    dead = "backend exited with code 101: panicked at path_router.rs:138:17: Path segments"
    out = []
    for c in all_ok():
        if c.id == ids.BACKEND_RUNNING:
            out.append(CheckResult(c.id, c.name, ok=False, detail=dead))
        elif c.id in (ids.BACKEND_HEALTH, *ids.CONTRACT_CHECKS):
            out.append(
                CheckResult(
                    c.id, c.name, True, f"skipped: {dead}", skipped=True, cause=ids.BACKEND_RUNNING
                )
            )
        else:
            out.append(c)
    return out


def test_complete_phase_whose_checks_fail_is_regressed_not_complete() -> None:
    result = seed(checks=with_failure(ids.ROUTE_ROOT, "expected 200, got 500"))
    p08 = result.phase("08")
    assert p08.local.status == "regressed"
    assert p08.local.blocked_by == (ids.ROUTE_ROOT,)
    assert p08.local.evidence[0] == "marked complete in the registry, but its live checks fail"
    assert "route.root failed: expected 200, got 500" in p08.local.evidence
    # a regressed prerequisite holds its dependents back
    assert result.phase("11").local.blocked_by[0] == "08"
    assert result.actions[0].status == "blocked"


def test_dead_backend_regresses_08_and_blocks_by_the_one_root_cause() -> None:
    result = seed(checks=backend_dead())
    p08 = result.phase("08")
    assert p08.local.status == "regressed"
    assert p08.local.blocked_by == (ids.BACKEND_RUNNING,)
    cause_lines = [line for line in p08.local.evidence if line.startswith("backend.running")]
    assert cause_lines == [
        "backend.running failed (backend exited with code 101: panicked at path_router.rs:138:17:"
        " Path segments), so not verified: backend.health, route.root, route.health, "
        "route.version, route.not_found, middleware.request_id, middleware.csrf, "
        "middleware.cors.allowed, middleware.cors.denied"
    ]
    for phase_id in ("11", "11a", "14", "17", "20"):
        blocked = result.phase(phase_id).local.blocked_by
        assert ids.BACKEND_RUNNING in blocked, (phase_id, blocked)
        # the checks it explains are not listed one by one
        assert not set(blocked) & set(ids.CONTRACT_CHECKS), (phase_id, blocked)
    assert result.phase("11").local.blocked_by == ("08", ids.BACKEND_RUNNING)
    assert result.phase("06").local.status == "complete"


def test_advisory_failures_are_evidence_and_block_nothing() -> None:
    checks = [
        CheckResult(c.id, c.name, False, "bypass accepted Host x", level="advisory")
        if c.id == ids.ROUTE_API_FOREIGN_HOST
        else c
        for c in all_ok()
    ]
    p11a = seed(checks=checks).phase("11a")
    assert p11a.local.status == "can-proceed"
    assert (
        "route.api.foreign_host failed (advisory, blocks nothing): bypass accepted Host x"
        in p11a.local.evidence
    )


def test_a_skip_without_root_cause_does_not_regress_a_complete_phase() -> None:
    checks = [
        CheckResult(c.id, c.name, True, "skipped: cargo not on PATH", skipped=True)
        if c.id.startswith("scaffold.")
        else c
        for c in all_ok()
    ]
    assert seed(checks=checks).phase("08").local.status == "complete"


UNDECIDED = """
[[phase]]
id = "a"
name = "A"
decisions = ["DEC-001"]

[[phase]]
id = "b"
name = "B"
needs = ["a"]

[[decision]]
id = "DEC-001"
name = "open question"
chosen = false

[[unknown]]
id = "UNKNOWN-001"
what = "coverage"
status = "open"
blocks = ["b"]
"""


def test_undecided_decision_and_blocking_unknown() -> None:
    result = evaluate(parse_registry(UNDECIDED), LOCAL, [])
    a, b = result.phase("a"), result.phase("b")
    assert a.local.blocked_by == ("DEC-001",)
    assert a.production.blocked_by == ("DEC-001",)
    assert b.local.blocked_by == ("a", "UNKNOWN-001")
    assert not result.blocker("DEC-001").resolved
    assert result.blocker("UNKNOWN-001").blocks == ("b",)
