"""One watch cycle as data, pure: its one line, its JSON object and the dashboard's hand-off.

A cycle starts with a batch of saves and ends served (the new binary answers, the route checks
ran), unchanged (cargo made the same binary), or with the previous binary still serving: a
build that failed, a migration refused, a backend that crashed (the next good save brings it
back), or an engine that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from devenv.model import CheckResult

Outcome = Literal["served", "unchanged", "build-failed", "refused", "crashed", "failed"]
SCHEMA_VERSION = 1
WATCH_FILE = "watch.json"  # in the project's state directory, for `devenv ui`
SHOWN_FILES = 3


@dataclass(frozen=True)
class Checks:
    """The route checks after a restart: who passed, which failed (required, advisory)."""

    passed: int = 0
    total: int = 0
    failed: tuple[str, ...] = ()
    advisory: tuple[str, ...] = ()

    @classmethod
    def of(cls, results: Sequence[CheckResult]) -> Checks:
        ran = [r for r in results if not r.skipped]
        return cls(
            passed=sum(1 for r in ran if r.ok),
            total=len(ran),
            failed=tuple(r.id for r in ran if r.blocking),
            advisory=tuple(r.id for r in ran if r.failed and not r.blocking),
        )


@dataclass(frozen=True)
class Cycle:
    changed: tuple[str, ...]  # relative to the project root (watch.json, --json)
    shown: tuple[str, ...]  # relative to the checkout (the line)
    outcome: Outcome
    ended: datetime  # with its UTC offset
    build_seconds: float = 0.0
    restart_seconds: float = 0.0
    checks: Checks | None = None  # None: no checks ran this cycle
    applied: tuple[str, ...] = ()  # migrations the restarted backend applied ("3 notes")
    cancelled: int = 0  # builds of this cycle stopped by a newer save
    error: str | None = None  # one line, why the cycle did not serve
    details: tuple[str, ...] = ()  # a compiler excerpt, or the crashed backend's last logs

    @property
    def ok(self) -> bool:
        """The backend is healthy on this cycle's binary and no required check failed."""
        served = self.outcome in ("served", "unchanged")
        return served and self.error is None and not (self.checks and self.checks.failed)


def files(shown: Sequence[str]) -> str:
    listed = ", ".join(shown[:SHOWN_FILES])
    return listed + (f" (+{len(shown) - SHOWN_FILES} more)" if len(shown) > SHOWN_FILES else "")


def checks_text(checks: Checks) -> str:
    mark = "✗" if checks.failed else "✓"
    text = f"{checks.passed}/{checks.total} checks {mark}"
    if checks.failed:
        text += f" failed: {', '.join(checks.failed)}"
    if checks.advisory:
        text += f" (advisory failed: {', '.join(checks.advisory)})"
    return text


def line(cycle: Cycle) -> str:
    """`[watch] src/routes.rs → built 1.1 s, restarted 0.3 s, 19/19 checks ✓`"""
    built = f"built {cycle.build_seconds:.1f} s"
    if cycle.cancelled:
        noun = "build" if cycle.cancelled == 1 else "builds"
        built += f" (after {cycle.cancelled} {noun} cancelled by a newer save)"
    parts: list[str]
    if cycle.outcome == "served":
        parts = [built, f"restarted {cycle.restart_seconds:.1f} s"]
        if cycle.applied:
            parts.append(f"applied {', '.join(cycle.applied)}")
        if cycle.checks is not None:
            parts.append(checks_text(cycle.checks))
    elif cycle.outcome == "unchanged":
        parts = [built, "same binary: nothing to restart"]
    elif cycle.outcome == "build-failed":
        parts = [
            f"build failed in {cycle.build_seconds:.1f} s: {cycle.error}; "
            "the previous build keeps serving"
        ]
    elif cycle.outcome == "refused":
        parts = [f"refused: {cycle.error}; the previous build keeps serving"]
    elif cycle.outcome == "crashed":
        parts = [built, f"backend crashed: {cycle.error}; the next good save brings it back"]
    else:
        parts = [f"failed: {cycle.error}"]
    return f"[watch] {files(cycle.shown)} → {', '.join(parts)}"


def _stamp(cycle: Cycle) -> str:
    return cycle.ended.isoformat(timespec="milliseconds")


def cycle_data(cycle: Cycle) -> dict[str, Any]:
    """The cycle as `devenv watch --json` prints it: one object per line."""
    checks = cycle.checks or Checks()
    return {
        "schema_version": SCHEMA_VERSION,
        "time": _stamp(cycle),
        "changed": list(cycle.changed),
        "outcome": cycle.outcome,
        "ok": cycle.ok,
        "build_seconds": round(cycle.build_seconds, 3),
        "restart_seconds": round(cycle.restart_seconds, 3),
        "checks": {"passed": checks.passed, "failed": len(checks.failed), "total": checks.total},
        "failed_checks": list(checks.failed),
        "advisory_failed": list(checks.advisory),
        "applied": list(cycle.applied),
        "cancelled": cycle.cancelled,
        "error": cycle.error,
        "details": list(cycle.details),
    }


def watch_file_data(cycle: Cycle, pid: int) -> dict[str, Any]:
    """What `devenv ui` reads from `<state dir>/watch.json` (exactly these fields)."""
    checks = cycle.checks or Checks()
    return {
        "schema_version": SCHEMA_VERSION,
        "pid": pid,
        "time": _stamp(cycle),
        "changed": list(cycle.changed),
        "build_seconds": round(cycle.build_seconds, 3),
        "restart_seconds": round(cycle.restart_seconds, 3),
        "checks": {"passed": checks.passed, "failed": len(checks.failed)},
        "ok": cycle.ok,
        "error": cycle.error,
    }
