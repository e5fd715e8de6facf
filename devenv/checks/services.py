"""Root causes: whether each service runs, the first error a dead one logged, what it explains."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from devenv.checks import ids
from devenv.model import SERVICES, CheckResult, Level

DETAIL_LIMIT = 240
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_OLD_PANIC = re.compile(r"^'(?P<msg>.*)', (?P<loc>\S+)$")
_ERROR_WORD = re.compile(r"^(error|fatal|panic)\b|\b(ERROR|FATAL|PANIC)\b", re.IGNORECASE)
_ERROR_LEVELS = {"error", "fatal", "panic", "critical"}


@dataclass(frozen=True)
class ServiceState:
    """What the engine (or a connection attempt) says about one service, gathered by the caller.

    Local services: ``state`` is the container state, None when there is no container; ``logs``
    holds its last lines when it is not running. External ones: ``reachable`` and ``error``.
    """

    service: str
    external: bool = False
    state: str | None = None
    exit_code: int = 0
    restart_count: int = 0
    logs: str = ""
    endpoint: str = ""
    reachable: bool = False
    error: str = ""


def one_line(text: str, limit: int = DETAIL_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def running_check(s: ServiceState) -> CheckResult:
    """``<service>.running``: the container exists and runs, or the external provider answers."""
    check_id = ids.RUNNING_CHECKS[s.service]
    name = ids.check_name(check_id)
    if s.external:
        if s.reachable:
            return CheckResult(check_id, name, True, f"external, reachable at {s.endpoint}")
        why = f": {s.error}" if s.error else ""
        detail = f"{s.service} (external) unreachable at {s.endpoint}{why}"
        return CheckResult(check_id, name, False, one_line(detail))
    if s.state == "running":
        again = f", restarted {s.restart_count} times" if s.restart_count else ""
        return CheckResult(check_id, name, True, f"container running{again}")
    return CheckResult(check_id, name, False, one_line(_not_running(s)))


def _not_running(s: ServiceState) -> str:
    if s.state is None:
        return f"{s.service} has no container (run `devenv up`)"
    error = first_error(s.logs)
    why = f": {error}" if error else f" (see `devenv logs {s.service}`)"
    if s.state in ("exited", "dead"):
        return f"{s.service} exited with code {s.exit_code}{why}"
    if s.state == "restarting":
        return f"{s.service} is restarting after exit code {s.exit_code}{why}"
    if s.state == "created":
        return f"{s.service} was created but never started (run `devenv up`)"
    return f"{s.service} is {s.state} (run `devenv up`)"


def first_error(logs: str) -> str | None:
    """The first meaningful error among a container's last log lines, on one line.

    A Rust panic wins (with its message, which the panic prints on the next line), then the
    first JSON log record at error level, then the first plain line that says ERROR or FATAL.
    """
    lines = [_ANSI.sub("", line).strip() for line in logs.splitlines()]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines):
        if "panicked at " in line:
            return one_line(_panic(line, lines[i + 1 : i + 3]))
    for line in lines:
        record = _json_error(line)
        if record:
            return one_line(record)
    for line in lines:
        if not line.startswith("{") and _ERROR_WORD.search(line):
            return one_line(line)
    return None


def _panic(line: str, following: Sequence[str]) -> str:
    rest = line.split("panicked at ", 1)[1].strip()
    old = _OLD_PANIC.match(rest)
    if old:  # Rust before 1.73: panicked at 'message', file:line:col
        return f"panicked at {_short(old['loc'])}: {old['msg']}"
    location, _sep, inline = rest.partition(": ")
    message = inline.strip()
    if not message:
        message = next((f for f in following if not f.startswith("note:")), "")
    location = _short(location.rstrip(":"))
    return f"panicked at {location}: {message}" if message else f"panicked at {location}"


def _short(location: str) -> str:
    """A source location from the crate directory on: registry paths are long and say little."""
    head, sep, tail = location.rpartition("/src/")
    if not sep:
        return location
    return f"{head.rsplit('/', 1)[-1]}/src/{tail}"


def _json_error(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    fields = record.get("fields")
    merged = {**record, **fields} if isinstance(fields, dict) else record
    level = str(merged.get("level", "")).lower()
    if level not in _ERROR_LEVELS:
        return None
    message = str(merged.get("message") or merged.get("msg") or "").strip()
    error = str(merged.get("error") or merged.get("err") or "").strip()
    text = ": ".join(part for part in (message, error) if part)
    return text or line


# --- root causes ---------------------------------------------------------------------------


def root_cause(needs: Iterable[str], running: Mapping[str, CheckResult]) -> CheckResult | None:
    """The failed ``.running`` check of the first needed service, in dependency order."""
    wanted = set(needs)
    for service in SERVICES:  # dependencies first: a dead database explains a dead backend
        found = running.get(service)
        if service in wanted and found is not None and not found.ok:
            return found
    return None


def skipped_by(check_id: str, name: str, level: Level, cause: CheckResult) -> CheckResult:
    """A check not run because a service it needs is down: that one cause, not its symptom."""
    return CheckResult(
        check_id,
        name,
        ok=True,
        detail=f"skipped: {cause.detail}",
        skipped=True,
        level=level,
        cause=cause.id,
    )


def apply_root_causes(
    results: Iterable[CheckResult],
    needs: Mapping[str, Sequence[str]],
    running: Mapping[str, CheckResult],
) -> list[CheckResult]:
    """Replace each failed check whose needed service is down by a skip naming that cause.

    A check that passed keeps its result: evidence is evidence, even beside a dead service
    (migrations applied before the backend died are still applied).
    """
    out: list[CheckResult] = []
    for result in results:
        cause = None if result.ok else root_cause(needs.get(result.id, ()), running)
        out.append(
            result if cause is None else skipped_by(result.id, result.name, result.level, cause)
        )
    return out


def running_by_service(results: Iterable[CheckResult]) -> dict[str, CheckResult]:
    """The ``.running`` results among ``results``, by service."""
    by_id = {r.id: r for r in results}
    return {s: by_id[cid] for s, cid in ids.RUNNING_CHECKS.items() if cid in by_id}
