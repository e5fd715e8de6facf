"""The hand-off from `devenv watch`: its last cycle, read from `<state dir>/watch.json`.

`devenv watch` writes the file atomically (a temp file renamed over it) after every cycle and
removes it when it stops. The dashboard reads these fields (others are ignored):

    schema_version   1
    pid              the watch process (int); the cycle is shown only while it is alive
    time             when the cycle ended: ISO 8601 with a UTC offset
    changed          the files that triggered it, relative to the project root (list of str)
    build_seconds    time spent building the backend (number; 0 when nothing was built)
    restart_seconds  time spent restarting it until healthy (number)
    checks           {"passed": int, "failed": int} of the checks run after the restart
    ok               whether the cycle ended with a healthy backend and no failed check
    error            null, or the one-line error that ended the cycle (already redacted)

Without a `pid` the cycle counts as current for FRESH_SECONDS after `time`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WATCH_FILE = "watch.json"
SCHEMA_VERSION = 1
FRESH_SECONDS = 600.0


@dataclass(frozen=True)
class WatchCycle:
    time: datetime
    changed: tuple[str, ...]
    build_seconds: float
    restart_seconds: float
    passed: int
    failed: int
    ok: bool
    error: str | None
    pid: int | None = None


@dataclass(frozen=True)
class WatchView:
    """What the page shows: the last cycle, or why the file could not be used."""

    cycle: WatchCycle | None = None
    problem: str | None = None


class _Bad(ValueError):
    pass


def _get(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in raw:
        raise _Bad(f"{key} is missing")
    value = raw[key]
    if isinstance(value, bool) and kind is not bool:
        raise _Bad(f"{key} must be {what}")
    if not isinstance(value, kind):
        raise _Bad(f"{key} must be {what}")
    return value


def parse_cycle(text: str) -> WatchCycle:
    """Validate the file's text; ValueError names the first bad field."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise _Bad(f"not JSON ({exc.args[0]})") from exc
    if not isinstance(raw, dict):
        raise _Bad("not a JSON object")
    version = raw.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise _Bad(f"schema_version {version!r} is not {SCHEMA_VERSION}")
    stamp = _get(raw, "time", str, "an ISO 8601 time")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise _Bad(f"time {stamp!r} is not ISO 8601") from exc
    if when.tzinfo is None:
        raise _Bad(f"time {stamp!r} has no UTC offset")
    changed = _get(raw, "changed", list, "a list of paths")
    if not all(isinstance(c, str) for c in changed):
        raise _Bad("changed must be a list of paths")
    checks = _get(raw, "checks", dict, 'an object {"passed": n, "failed": n}')
    counts = [_get(checks, k, int, "a whole number") for k in ("passed", "failed")]
    error = raw.get("error")
    if error is not None and not isinstance(error, str):
        raise _Bad("error must be null or a string")
    pid = raw.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        raise _Bad("pid must be a whole number")
    return WatchCycle(
        time=when,
        changed=tuple(changed),
        build_seconds=float(_get(raw, "build_seconds", (int, float), "a number")),
        restart_seconds=float(_get(raw, "restart_seconds", (int, float), "a number")),
        passed=counts[0],
        failed=counts[1],
        ok=bool(_get(raw, "ok", bool, "true or false")),
        error=error,
        pid=pid,
    )


def watch_view(
    text: str | None, *, now: datetime, alive: Callable[[int], bool]
) -> WatchView | None:
    """The watch panel for the file's text (None: no file); None too when it is stale."""
    if text is None:
        return None
    try:
        cycle = parse_cycle(text)
    except ValueError as exc:
        return WatchView(problem=f"{WATCH_FILE} is unusable: {exc}")
    if cycle.pid is not None:
        return WatchView(cycle) if alive(cycle.pid) else None
    age = (now - cycle.time).total_seconds()
    return WatchView(cycle) if age <= FRESH_SECONDS else None
