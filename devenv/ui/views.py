"""View models of the dashboard: plain data the adapter fills and the page renders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from devenv.model import CheckResult
from devenv.phases.evaluate import Evaluation

Result = Literal["ok", "fail", "warn", "skip"]


@dataclass(frozen=True)
class ServiceView:
    """One row of the services table: `devenv status`'s, URL masked; the hub redacts the rest."""

    name: str
    provider: str
    state: str  # running | exited | absent | external | ... (the engine's word)
    healthy: bool
    detail: str
    latency_ms: float | None  # the probe's round trip; None when no probe ran
    image: str
    url: str

    @property
    def health(self) -> str:
        return "healthy" if self.healthy else "unhealthy"

    @property
    def latency(self) -> str:
        if self.latency_ms is None:
            return "-"
        if self.latency_ms < 10:
            return f"{self.latency_ms:.1f} ms"
        return f"{self.latency_ms:.0f} ms"


@dataclass(frozen=True)
class CheckView:
    id: str
    name: str
    level: str
    result: Result
    detail: str


def check_view(check: CheckResult) -> CheckView:
    """The result word `devenv check` prints (ok, FAIL, warn, skip), and the detail it shows."""
    if check.skipped:
        result: Result = "skip"
        detail = f"not run: {check.cause} failed" if check.cause else check.detail
    elif check.ok:
        result, detail = "ok", check.detail
    else:
        result, detail = ("fail" if check.level == "required" else "warn"), check.detail
    return CheckView(check.id, check.name, check.level, result, detail)


def summary(checks: Sequence[CheckResult]) -> str:
    passed = sum(1 for c in checks if c.ok and not c.skipped)
    failed = sum(1 for c in checks if c.blocking)
    advisory = sum(1 for c in checks if c.failed and not c.blocking)
    skipped = sum(1 for c in checks if c.skipped)
    parts = [f"{passed} passed", f"{failed} failed"]
    if advisory:
        parts.append(f"{advisory} advisory failed")
    if skipped:
        parts.append(f"{skipped} skipped")
    return ", ".join(parts)


@dataclass(frozen=True)
class Checked:
    """What the adapter hands back from one run of the checks."""

    checks: tuple[CheckResult, ...]
    evaluation: Evaluation
    profile: str


@dataclass(frozen=True)
class CheckRun:
    """One run of the checks and the phase evaluation made from it (as `devenv report`)."""

    number: int
    finished: str  # local wall-clock time, HH:MM:SS
    seconds: float
    checks: tuple[CheckView, ...] = ()
    summary: str = ""
    evaluation: Evaluation | None = None
    profile: str = ""
    error: str | None = None  # the run could not happen (a config error, no engine)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.checks if c.result == "fail")


@dataclass(frozen=True)
class ActionView:
    """The last action started from the page, while it runs and after."""

    name: str = ""  # "checks", "up", "restart postgres"; empty before the first
    running: bool = False
    ok: bool = True
    message: str = ""
    lines: tuple[str, ...] = ()  # progress, redacted
    started: str = ""
    seconds: float | None = None
