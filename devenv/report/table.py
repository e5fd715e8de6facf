"""Plain-text terminal tables of checks, phase verdicts and actions, at most 100 columns wide."""

from __future__ import annotations

from collections.abc import Sequence

from devenv.checks.ids import ordered
from devenv.console import grid
from devenv.model import CheckResult
from devenv.phases.evaluate import Evaluation, PartVerdict

WIDTH = 100
OK, FAIL, SKIP, ADVISORY = "✓", "✗", "-", "!"


def render_table(
    evaluation: Evaluation, *, profile_name: str, checks: Sequence[CheckResult], width: int = WIDTH
) -> str:
    """Checks, then phases, then actions; the last column of each table is cut to fit."""
    sections = [
        f"Profile: {profile_name}",
        "",
        "Checks",
        _grid([[_check_mark(c), c.id, _check_detail(c)] for c in ordered(checks)], width),
        "",
        "Phases",
        _grid(
            [["phase", "local", "production", "blocked by"]]
            + [
                [
                    f"{p.id} {p.name}",
                    _part(p.local),
                    _part(p.production),
                    _blocked(p.local, p.production),
                ]
                for p in evaluation.phases
            ],
            width,
        ),
        "",
        "What can proceed now",
        _grid(
            [
                [
                    FAIL if a.status in ("blocked", "regressed") else OK,
                    a.phase,
                    a.what,
                    f"{a.status} ({', '.join(a.blocked_by)})" if a.blocked_by else a.status,
                ]
                for a in evaluation.actions
            ],
            width,
        ),
    ]
    return "\n".join(sections) + "\n"


def _check_mark(check: CheckResult) -> str:
    if check.skipped:
        return SKIP
    if check.ok:
        return OK
    return FAIL if check.level == "required" else ADVISORY


def _check_detail(check: CheckResult) -> str:
    if check.cause:  # the root cause's own row says why; repeating it would bury it
        return f"skipped: {check.cause} failed"
    if check.failed and check.level == "advisory":
        return f"advisory: {check.detail}"
    return check.detail


def _part(part: PartVerdict) -> str:
    return f"{FAIL if part.status in ('blocked', 'regressed') else OK} {part.status}"


def _blocked(local: PartVerdict, production: PartVerdict) -> str:
    pieces = []
    if local.blocked_by:
        pieces.append(f"local: {', '.join(local.blocked_by)}")
    if production.blocked_by:
        pieces.append(f"prod: {', '.join(production.blocked_by)}")
    return "; ".join(pieces)


def _grid(rows: Sequence[Sequence[str]], width: int) -> str:
    return grid(rows, width=width, indent=2)
