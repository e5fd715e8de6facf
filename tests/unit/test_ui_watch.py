"""The `devenv watch` hand-off: which watch.json the page shows, and what a bad one says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devenv.ui.watch import FRESH_SECONDS, parse_cycle, watch_view

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


def cycle(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": 1,
        "pid": 4242,
        "time": (NOW - timedelta(seconds=30)).isoformat(),
        "changed": ["backend/src/routes.rs"],
        "build_seconds": 12.5,
        "restart_seconds": 0.75,
        "checks": {"passed": 27, "failed": 0},
        "ok": True,
        "error": None,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def view(data: dict[str, Any], *, alive: bool = True) -> Any:
    return watch_view(json.dumps(data), now=NOW, alive=lambda _pid: alive)


def test_every_field_is_read() -> None:
    c = parse_cycle(json.dumps(cycle(ok=False, error="backend.health: GET 500")))
    assert c.time == NOW - timedelta(seconds=30)
    assert c.changed == ("backend/src/routes.rs",)
    assert (c.build_seconds, c.restart_seconds) == (12.5, 0.75)
    assert (c.passed, c.failed, c.ok) == (27, 0, False)
    assert c.error == "backend.health: GET 500"
    assert c.pid == 4242


def test_no_file_no_panel() -> None:
    assert watch_view(None, now=NOW, alive=lambda _pid: True) is None


def test_shown_while_the_watch_process_lives_however_old() -> None:
    old = cycle(time=(NOW - timedelta(hours=5)).isoformat())
    shown = view(old, alive=True)
    assert shown is not None
    assert shown.cycle is not None
    assert view(old, alive=False) is None
    assert view(cycle(), alive=False) is None  # a watch that died leaves a stale file


def test_without_a_pid_only_a_recent_cycle_counts() -> None:
    recent = view(cycle(pid=...), alive=False)
    assert recent is not None
    assert recent.cycle is not None
    stale = cycle(pid=..., time=(NOW - timedelta(seconds=FRESH_SECONDS + 1)).isoformat())
    assert view(stale) is None


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"time": ...}, "time is missing"),
        ({"time": "yesterday"}, "not ISO 8601"),
        ({"time": "2026-01-06T12:00:00"}, "no UTC offset"),
        ({"changed": "src/a.rs"}, "changed must be a list"),
        ({"changed": [1]}, "changed must be a list"),
        ({"build_seconds": "12"}, "build_seconds must be a number"),
        ({"restart_seconds": True}, "restart_seconds must be a number"),
        ({"checks": {"passed": 1}}, "failed is missing"),
        ({"checks": {"passed": 1.5, "failed": 0}}, "passed must be a whole number"),
        ({"ok": "yes"}, "ok must be true or false"),
        ({"error": 3}, "error must be null or a string"),
        ({"pid": "12"}, "pid must be a whole number"),
        ({"schema_version": 2}, "schema_version 2"),
    ],
)
def test_a_bad_file_is_named_not_hidden(changes: dict[str, Any], said: str) -> None:
    shown = view(cycle(**changes))
    assert shown is not None
    assert shown.cycle is None
    assert shown.problem is not None
    assert shown.problem.startswith("watch.json is unusable: ")
    assert said in shown.problem


@pytest.mark.parametrize("text", ["", "{", "[]", "null"])
def test_text_that_is_no_object(text: str) -> None:
    shown = watch_view(text, now=NOW, alive=lambda _pid: True)
    assert shown is not None
    assert shown.problem is not None
