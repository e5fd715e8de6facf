"""Root causes: `<service>.running` from engine facts, the first error a dead container logged,
and the checks a dead service explains."""

from __future__ import annotations

import pytest

from devenv.checks import ids
from devenv.checks.services import (
    ServiceState,
    apply_root_causes,
    first_error,
    root_cause,
    running_by_service,
    running_check,
)
from devenv.model import CheckResult

AXUM_PANIC = """\
{"timestamp":"2026-01-07T10:00:00.000Z","level":"INFO","message":"starting ignition-api"}
thread 'main' panicked at /usr/local/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/\
axum-0.8.4/src/routing/path_router.rs:138:17:
Path segments must not start with `:`. For capture groups, use `{capture}`.
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
"""
AXUM_LINE = (
    "panicked at axum-0.8.4/src/routing/path_router.rs:138:17: "
    "Path segments must not start with `:`. For capture groups, use `{capture}`."
)


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        pytest.param(AXUM_PANIC, AXUM_LINE, id="panic-message-on-next-line"),
        pytest.param(
            "thread 'main' panicked at 'DATABASE_URL must be set', src/main.rs:12:10\n",
            "panicked at src/main.rs:12:10: DATABASE_URL must be set",
            id="panic-before-rust-1.73",
        ),
        pytest.param(
            '{"level":"INFO","message":"connecting"}\n'
            '{"timestamp":"t","level":"ERROR","error":"cannot connect to Postgres at '
            '127.0.0.1:1: Connection refused","message":"start-up failed"}\n'
            '{"level":"ERROR","message":"later and less useful"}\n',
            "start-up failed: cannot connect to Postgres at 127.0.0.1:1: Connection refused",
            id="json-error-record",
        ),
        pytest.param(
            '{"level":"error","fields":{"message":"migrate","error":"migration 3 missing"}}\n',
            "migrate: migration 3 missing",
            id="json-nested-fields",
        ),
        pytest.param(
            "2026-01-07T10:00:00Z  INFO ignition_api: starting\n"
            "2026-01-07T10:00:01Z ERROR ignition_api: migration 1 was previously applied but "
            "is missing in the resolved migrations\n",
            "2026-01-07T10:00:01Z ERROR ignition_api: migration 1 was previously applied but "
            "is missing in the resolved migrations",
            id="plain-tracing",
        ),
        pytest.param(
            "Error: DATABASE_URL must be set\n", "Error: DATABASE_URL must be set", id="anyhow"
        ),
        pytest.param(
            "2026-01-07 10:00:00.000 UTC [1] FATAL:  data directory has wrong ownership\n",
            "2026-01-07 10:00:00.000 UTC [1] FATAL: data directory has wrong ownership",
            id="postgres-fatal",
        ),
        pytest.param("\x1b[31mERROR\x1b[0m boom\n", "ERROR boom", id="ansi-colours"),
        pytest.param("listening on 127.0.0.1:8080\nshutting down\n", None, id="no-error"),
        pytest.param("", None, id="empty"),
    ],
)
def test_first_error(logs: str, expected: str | None) -> None:
    assert first_error(logs) == expected


def test_first_error_is_one_bounded_line() -> None:
    line = first_error("ERROR " + "x" * 1000 + "\n")
    assert line is not None
    assert len(line) <= 240
    assert line.endswith("…")


@pytest.mark.parametrize(
    ("state", "ok", "detail"),
    [
        (ServiceState("backend", state="running"), True, "container running"),
        (
            ServiceState("backend", state="running", restart_count=2),
            True,
            "container running, restarted 2 times",
        ),
        (
            ServiceState("backend", state="exited", exit_code=101, logs=AXUM_PANIC),
            False,
            f"backend exited with code 101: {AXUM_LINE}",
        ),
        (
            ServiceState("backend", state="exited", exit_code=0, logs="stopped\n"),
            False,
            "backend exited with code 0 (see `devenv logs backend`)",
        ),
        (
            ServiceState("postgres", state="restarting", exit_code=1, logs="FATAL: x\n"),
            False,
            "postgres is restarting after exit code 1: FATAL: x",
        ),
        (ServiceState("objectstore"), False, "objectstore has no container (run `devenv up`)"),
        (
            ServiceState("backend", state="created"),
            False,
            "backend was created but never started (run `devenv up`)",
        ),
        (ServiceState("backend", state="paused"), False, "backend is paused (run `devenv up`)"),
        (
            ServiceState("postgres", external=True, endpoint="db.internal:5432", reachable=True),
            True,
            "external, reachable at db.internal:5432",
        ),
        (
            ServiceState(
                "postgres", external=True, endpoint="db.internal:5432", error="Connection refused"
            ),
            False,
            "postgres (external) unreachable at db.internal:5432: Connection refused",
        ),
    ],
)
def test_running_check(state: ServiceState, ok: bool, detail: str) -> None:
    result = running_check(state)
    assert result.id == ids.RUNNING_CHECKS[state.service]
    assert (result.ok, result.detail) == (ok, detail)
    assert result.level == "required"


def _running(**down: str) -> dict[str, CheckResult]:
    results = [
        CheckResult(cid, ids.check_name(cid), service not in down, down.get(service, "ok"))
        for service, cid in ids.RUNNING_CHECKS.items()
    ]
    return running_by_service(results)


def test_root_cause_prefers_the_dependency() -> None:
    running = _running(postgres="postgres exited with code 1", backend="backend exited")
    cause = root_cause(("backend", "postgres"), running)
    assert cause is not None
    assert cause.id == ids.POSTGRES_RUNNING
    assert root_cause(("objectstore",), running) is None


def test_failed_readiness_checks_are_replaced_by_their_root_cause() -> None:
    ready = [
        CheckResult(ids.POSTGRES_READY, "pg", True, "SELECT 1 ok"),
        CheckResult(ids.BACKEND_HEALTH, "be", False, "connection refused"),
        CheckResult("route.other", "x", False, "not a readiness check"),
        CheckResult(ids.POSTGRES_MIGRATIONS, "m", False, 'relation "_sqlx_migrations" missing'),
    ]
    out = apply_root_causes(ready, ids.SERVICE_CHECK_NEEDS, _running(backend="backend exited"))
    assert out[0] == ready[0]
    # no migrations because the backend, which applies them, never started
    assert (out[3].skipped, out[3].cause) == (True, ids.BACKEND_RUNNING)
    assert out[1] == CheckResult(
        ids.BACKEND_HEALTH,
        "be",
        ok=True,
        detail="skipped: backend exited",
        skipped=True,
        cause=ids.BACKEND_RUNNING,
    )
    assert out[2] == ready[2]


def test_a_passing_check_keeps_its_evidence_beside_a_dead_service() -> None:
    applied = CheckResult(ids.POSTGRES_MIGRATIONS, "m", True, "2 applied")
    running = _running(backend="backend exited")
    assert apply_root_causes([applied], ids.SERVICE_CHECK_NEEDS, running) == [applied]
