"""Waiting, apart from probing: poll fast with backoff until ready, a deadline, or a fatal sign."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from devenv.probes.base import Probe, ProbeFailure


@dataclass(frozen=True)
class Clock:
    """Time as the waits see it: unit tests inject their own; the executor's `sleep` returns
    early when a SIGINT cancels the run (an Event's `wait`)."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = time.sleep


@dataclass(frozen=True)
class WaitResult:
    ok: bool
    detail: str  # success fact, or the last error
    attempts: int
    elapsed: float
    fatal: str | None = None  # why waiting stopped before the deadline


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ProbeFailure) and exc.transient


def wait_ready(
    probe: Probe,
    *,
    timeout: float,
    abort: Callable[[], str | None] | None = None,
    clock: Clock | None = None,
    first_delay: float = 0.02,
    max_delay: float = 0.25,
) -> WaitResult:
    """Attempt `probe` until it passes, fails permanently, `abort()` names a reason, or time ends.

    Polling starts at tens of milliseconds and backs off to `max_delay`; a ready service is
    seen within one short interval. The sleep is the poll interval of a remote check, not a
    synchronisation of our own threads.
    """
    clock = clock or Clock()
    start = clock.now()
    deadline = start + timeout
    fatal: list[str] = []

    def stop(_state: tenacity.RetryCallState) -> bool:
        reason = abort() if abort is not None else None
        if reason:
            fatal.append(reason)
            return True
        return clock.now() >= deadline

    def wait(state: tenacity.RetryCallState) -> float:
        delay = min(first_delay * 1.5 ** (state.attempt_number - 1), max_delay)
        return min(delay, max(0.0, deadline - clock.now()))

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        stop=stop,
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    attempts = 0

    def attempt() -> str:
        nonlocal attempts
        attempts += 1
        return probe.attempt()

    try:
        fact = retrying(attempt)
    except ProbeFailure as failure:
        permanent = None if failure.transient else failure.message
        why = fatal[0] if fatal else permanent
        return WaitResult(False, failure.message, attempts, clock.now() - start, fatal=why)
    return WaitResult(True, fact, attempts, clock.now() - start)
