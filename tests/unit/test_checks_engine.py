"""The pure engine: judging a recorded answer, paths, types, captures and cleanup."""

from __future__ import annotations

import json

import pytest

from devenv.checks.engine import (
    Mismatch,
    Recorded,
    Request,
    TransportError,
    field_value,
    judge,
    run_check,
    variables_for,
)
from devenv.checks.spec import Expect, Selected, Step, parse_contract


def answer(body: object, status: int = 200, **headers: str) -> Recorded:
    return Recorded(status, headers, json.dumps(body).encode())


def unmet(step: Step, got: Recorded) -> str | None:
    try:
        judge(step, got, variables_for({}, "u"))
    except Mismatch as exc:
        return str(exc)
    return None


def test_equality_is_typed_true_is_not_one() -> None:
    step = Step(path="/", expect=(Expect("field", "ok", "equals", True),))
    assert unmet(step, answer({"ok": True})) is None
    assert unmet(step, answer({"ok": 1})) == "expected ok = true, got ok = 1"


def test_paths_walk_objects_and_list_indexes() -> None:
    body = {"tables": [{"name": "users", "row_count": 1}]}
    assert field_value(body, "tables.0.name") == "users"
    step = Step(path="/", expect=(Expect("field", "tables.1.name", "present", True),))
    assert unmet(step, answer(body)) == "expected tables.1.name present, got tables.1.name absent"


@pytest.mark.parametrize(
    ("value", "met"),
    [(["user", "admin"], True), ("super-admin", True), (["user"], False), (None, False)],
)
def test_contains_means_list_item_or_substring(value: object, met: bool) -> None:
    step = Step(path="/", expect=(Expect("field", "roles", "contains", "admin"),))
    assert (unmet(step, answer({"roles": value})) is None) is met


def test_variables_resolve_in_expectations() -> None:
    step = Step(path="/", expect=(Expect("field", "id", "equals", "${dev_user_id}"),))
    dev = "00000000-0000-0000-0000-000000000001"
    assert unmet(step, answer({"id": dev})) is None
    assert unmet(step, answer({"id": "x"})) == f'expected id = "{dev}", got id = "x"'


FLOW = """
[[check]]
id = "blob.flow"
name = "Flow"
[[check.step]]
method = "POST"
path = "/things"
status = 201
capture = { id = "id" }
[[check.step]]
path = "/things/${id}"
status = 200
[[check.cleanup]]
method = "DELETE"
path = "/things/${id}"
"""


def run_flow(answers: dict[tuple[str, str], Recorded]) -> tuple[str, list[Request]]:
    (spec,) = parse_contract(FLOW).checks
    sent: list[Request] = []

    def send(request: Request) -> Recorded:
        sent.append(request)
        found = answers.get((request.method, request.path))
        if found is None:
            raise TransportError("ConnectError: refused")
        return found

    selected = Selected(spec.id, spec.name, spec.level, spec.needs, spec)
    result = run_check(selected, send=send, object_exists=None, variables=variables_for({}, "u"))
    return result.detail, sent


def test_captures_feed_later_steps_and_cleanup_always_runs() -> None:
    detail, sent = run_flow(
        {
            ("POST", "/things"): answer({"id": 7}, 201),
            ("GET", "/things/7"): answer({}, 200),
            ("DELETE", "/things/7"): answer({}, 200),
        }
    )
    assert detail == "POST /things 201; GET /things/${id} 200"
    assert [(r.method, r.path) for r in sent] == [
        ("POST", "/things"),
        ("GET", "/things/7"),
        ("DELETE", "/things/7"),
    ]


def test_a_missing_capture_fails_and_its_cleanup_is_not_sent() -> None:
    detail, sent = run_flow({("POST", "/things"): answer({"name": "x"}, 201)})
    assert detail == (
        'step 1 (POST /things): expected a value at id to keep as ${id}, got 201 {"name": "x"}'
    )
    assert [r.method for r in sent] == ["POST"]


def test_no_answer_names_the_step() -> None:
    detail, _sent = run_flow({("POST", "/things"): answer({"id": 7}, 201)})
    assert detail == (
        "step 2 (GET /things/${id}): expected an HTTP answer, got ConnectError: refused"
    )
