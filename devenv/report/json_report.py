"""The versioned JSON report: checks, phase verdicts, blockers and actions, in a stable order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from devenv.checks.ids import ordered
from devenv.model import CheckResult
from devenv.phases.evaluate import Evaluation

# 2: checks carry level and cause; a phase part may be "regressed"; summary counts required
#    failures (failed) apart from advisory ones and lists regressed phases
REPORT_SCHEMA = 2


def to_json(
    evaluation: Evaluation,
    *,
    profile_name: str,
    checks: Sequence[CheckResult],
    generated_at: datetime,
) -> dict[str, Any]:
    """The report as plain data; bump REPORT_SCHEMA when a field changes meaning."""
    sorted_checks = ordered(checks)
    return {
        "schema_version": REPORT_SCHEMA,
        "profile": profile_name,
        "generated_at": generated_at.isoformat(),
        "summary": {
            "checks": len(sorted_checks),
            "passed": sum(1 for c in sorted_checks if c.ok and not c.skipped),
            "failed": sum(1 for c in sorted_checks if c.blocking),
            "advisory_failed": sum(1 for c in sorted_checks if c.failed and not c.blocking),
            "skipped": sum(1 for c in sorted_checks if c.skipped),
            "can_proceed_locally": [
                p.id for p in evaluation.phases if p.local.status == "can-proceed"
            ],
            "regressed": [
                p.id
                for p in evaluation.phases
                if "regressed" in (p.local.status, p.production.status)
            ],
        },
        "checks": [
            {
                "id": c.id,
                "name": c.name,
                "level": c.level,
                "ok": c.ok,
                "skipped": c.skipped,
                "cause": c.cause,
                "detail": c.detail,
            }
            for c in sorted_checks
        ],
        "phases": [
            {
                "id": p.id,
                "name": p.name,
                "local": p.local.status,
                "production": p.production.status,
                "blocked_by": {
                    "local": list(p.local.blocked_by),
                    "production": list(p.production.blocked_by),
                },
                "evidence": {
                    "local": list(p.local.evidence),
                    "production": list(p.production.evidence),
                },
            }
            for p in evaluation.phases
        ],
        "blockers": [
            {
                "id": b.id,
                "kind": b.kind,
                "category": b.category,
                "what": b.what,
                "resolved": b.resolved,
                "by": b.by,
                "blocks": list(b.blocks),
                "note": b.note,
            }
            for b in evaluation.blockers
        ],
        "can_proceed_now": [
            {
                "action": a.what,
                "phase": a.phase,
                "part": a.part,
                "status": a.status,
                "blocked_by": list(a.blocked_by),
                "note": a.note,
            }
            for a in evaluation.actions
        ],
    }


def dumps(report: dict[str, Any]) -> str:
    """Stable text form: two-space indent, UTF-8 kept readable, trailing newline."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
