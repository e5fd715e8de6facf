"""Waiting, apart from probing: poll fast with backoff until ready, a deadline, or a fatal sign."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from devenv.probes.base import Probe, ProbeFailure


@dataclass(frozen=True)
class Clock:
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class WaitResult:
    ok: bool
    detail: str  # success fact, or the last error
    attempts: int
    elapsed: float
    fatal: str | None = None  # why waiting stopped before the deadline


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
    delay = first_delay
    attempts = 0
    last = "no attempt yet"
    while True:
        attempts += 1
        try:
            fact = probe.attempt()
            return WaitResult(True, fact, attempts, clock.now() - start)
        except ProbeFailure as failure:
            last = failure.message
            if not failure.transient:
                return WaitResult(False, last, attempts, clock.now() - start, fatal=last)
        if abort is not None:
            reason = abort()
            if reason:
                return WaitResult(False, last, attempts, clock.now() - start, fatal=reason)
        now = clock.now()
        if now >= deadline:
            return WaitResult(False, last, attempts, now - start)
        clock.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 1.5, max_delay)
