"""The JSON documents of `up`, `status` and `check`: plain data, each with its own version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devenv.app import CheckRun, StatusResult, UpResult
    from devenv.plan import Plan

STATUS_SCHEMA = 1  # bump when a field of `status --json` changes meaning
CHECK_SCHEMA = 1  # likewise for `check --json`


def plan_data(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"kind": s.kind, "target": s.target, "cause": s.cause, "after": list(s.after)}
        for s in plan.steps
    ]


def dry_run_data(plan: Plan) -> dict[str, Any]:
    return {
        "plan": plan_data(plan),
        "noop": plan.noop,
        "notes": list(plan.notes),
        "refused": plan.error.one_line() if plan.error is not None else None,
    }


def up_data(result: UpResult) -> dict[str, Any]:
    return {
        "project": result.project,
        "profile": result.profile,
        "noop": result.noop,
        "seconds": round(result.seconds, 3),
        "plan": plan_data(result.plan),
        "steps": [
            {
                "kind": o.step.kind,
                "target": o.step.target,
                "status": o.status,
                "detail": o.detail,
                "seconds": round(o.seconds, 3),
            }
            for o in result.outcomes
        ],
        "services": [s.__dict__ for s in result.services],
        "notes": list(result.notes),
    }


def status_data(result: StatusResult) -> dict[str, Any]:
    return {
        "schema_version": STATUS_SCHEMA,
        "project": result.project,
        "profile": result.profile,
        "services": [s.__dict__ for s in result.services],
    }


def check_data(run: CheckRun) -> dict[str, Any]:
    return {
        "schema_version": CHECK_SCHEMA,
        "profile": run.profile,
        "ok": not run.failed,
        "failed": [c.id for c in run.failed],
        "advisory_failed": [c.id for c in run.advisory_failed],
        "checks": [c.__dict__ for c in run.results],
    }
