"""Run one contract check: resolve variables, send each step, judge the recorded answer.

Pure: the HTTP exchange and the bucket lookup are injected, so tests replay recorded answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from devenv.checks.services import one_line, root_cause, skipped_by
from devenv.checks.spec import (
    CheckSpec,
    Expect,
    FilePart,
    Selected,
    Step,
    substitute,
    variables_in,
)
from devenv.model import DEV_USER_ID, CheckResult
from devenv.probes.base import ProbeFailure


@dataclass(frozen=True)
class Request:
    """A step with its variables resolved: what the transport sends."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    json: object = None
    form: tuple[tuple[str, str], ...] = ()
    files: tuple[FilePart, ...] = ()


@dataclass(frozen=True)
class Recorded:
    """An HTTP answer as data; header names are lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class TransportError(Exception):
    """The request got no HTTP answer (refused, reset, timed out)."""


class Mismatch(Exception):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")


Send = Callable[[Request], Recorded]
ObjectExists = Callable[[str], bool]  # raises ProbeFailure when the store does not answer
_MISSING = object()
_NOT_JSON = object()


def variables_for(constants: Mapping[str, str], uuid: str) -> dict[str, str]:
    """The contract's [vars] plus the values generated for one run of one check."""
    return {
        **constants,
        "uuid": uuid,
        "payload": f"devenv contract probe {uuid}\n",
        "request_id": f"devenv-{uuid}",
        "dev_user_id": DEV_USER_ID,
    }


def run_check(
    selected: Selected,
    *,
    send: Send,
    object_exists: ObjectExists | None,
    variables: Mapping[str, str],
    running: Mapping[str, CheckResult] | None = None,
) -> CheckResult:
    """The check's result; never raises for a wrong or missing answer.

    Skipped without a request when no variant applies to this bypass mode, or when a service it
    needs is not running (then ``cause`` names that service's ``.running`` check).
    """
    if selected.spec is None:
        return CheckResult(
            selected.id,
            selected.name,
            ok=True,
            detail=selected.skip_reason,
            skipped=True,
            level=selected.level,
        )
    cause = root_cause(selected.needs, running or {})
    if cause is not None:
        return skipped_by(selected.id, selected.name, selected.level, cause)
    spec = selected.spec
    values = dict(variables)
    done: list[str] = []
    routes = [(s.method, s.path) for s in spec.steps if not s.is_bucket]
    repeated = {route for route in routes if routes.count(route) > 1}
    try:
        for number, step in enumerate(spec.steps, 1):
            try:
                said = _step(step, values, send, object_exists)
                if (step.method, step.path) in repeated:
                    said = summary(step, with_headers=True)
                done.append(said)
            except Mismatch as exc:
                raise _StepFailed(_where(spec, number, step), str(exc), step, values) from exc
            except TransportError as exc:
                got = Mismatch("an HTTP answer", str(exc))
                raise _StepFailed(_where(spec, number, step), str(got), step, values) from exc
    except _StepFailed as failed:
        return _result(spec, ok=False, detail=failed.detail)
    finally:
        _cleanup(spec, values, send)
    return _result(spec, ok=True, detail="; ".join(done))


class _StepFailed(Exception):
    def __init__(self, where: str, message: str, step: Step, values: Mapping[str, str]) -> None:
        if step.on_fail:  # the contract's own words say which step failed and why
            self.detail = f"{substitute(step.on_fail, values)} ({message})"
        else:
            self.detail = f"{where}{message}"
        super().__init__(self.detail)


def _where(spec: CheckSpec, number: int, step: Step) -> str:
    if len(spec.steps) == 1:
        return ""
    what = f"object {step.object}" if step.is_bucket else f"{step.method} {step.path}"
    return f"step {number} ({what}): "


def _result(spec: CheckSpec, *, ok: bool, detail: str) -> CheckResult:
    return CheckResult(spec.id, spec.name, ok=ok, detail=one_line(detail), level=spec.level)


def _cleanup(spec: CheckSpec, values: Mapping[str, str], send: Send) -> None:
    """Undo what the steps made, whatever happened; a step without its captures is not sent."""
    for step in spec.cleanup:
        texts = [step.path or "", *(v for _k, v in step.headers)]
        if any(name not in values for text in texts for name in variables_in(text)):
            continue
        try:
            send(resolve(step, values))
        except TransportError:
            continue


# --- one step ----------------------------------------------------------------------------


def resolve(step: Step, values: Mapping[str, str]) -> Request:
    """The request of an HTTP step with every ${variable} replaced."""
    assert step.path is not None
    return Request(
        method=step.method,
        path=substitute(step.path, values),
        headers=tuple((k, substitute(v, values)) for k, v in step.headers),
        json=_substitute_json(step.json, values),
        form=tuple((k, substitute(v, values)) for k, v in step.form),
        files=tuple(
            FilePart(f.field, substitute(f.content, values), f.filename, f.content_type)
            for f in step.files
        ),
    )


def _substitute_json(value: object, values: Mapping[str, str]) -> object:
    if isinstance(value, str):
        return substitute(value, values)
    if isinstance(value, dict):
        return {k: _substitute_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_json(v, values) for v in value]
    return value


def _step(
    step: Step, values: dict[str, str], send: Send, object_exists: ObjectExists | None
) -> str:
    if step.is_bucket:
        return _bucket(step, values, object_exists)
    answer = send(resolve(step, values))
    judge(step, answer, values)
    for name, path in step.capture:
        found = field_value(parse_json(answer), path)
        if found is _MISSING or isinstance(found, dict | list) or found is None:
            raise Mismatch(f"a value at {path} to keep as ${{{name}}}", describe(answer))
        values[name] = str(found)
    return summary(step)


def _bucket(step: Step, values: Mapping[str, str], object_exists: ObjectExists | None) -> str:
    assert step.object is not None
    key = substitute(step.object, values)
    where = "in the bucket" if step.present else "gone from the bucket"
    if object_exists is None:
        return f"object {where}: not verified (no bucket access)"
    try:
        exists = object_exists(key)
    except ProbeFailure as exc:  # the store did not answer: a failed step, not a crash
        raise Mismatch(f"a lookup of object {key}", f"ProbeFailure: {exc.message}") from exc
    if exists != step.present:
        raise Mismatch(f"object {key} {where}", "present" if exists else "absent")
    return f"object {where}"


def judge(step: Step, answer: Recorded, values: Mapping[str, str]) -> None:
    """Raise Mismatch for the first expectation of ``step`` that ``answer`` does not meet."""
    if step.status and answer.status not in step.status:
        raise Mismatch(status_text(step.status), describe(answer))
    if step.text is not None:
        wanted = substitute(step.text, values)
        if answer.text.strip() != wanted.strip():
            raise Mismatch(f"text {wanted.strip()!r}", describe(answer))
    if step.body is not None:
        wanted = substitute(step.body, values)
        if answer.body != wanted.encode():
            raise Mismatch(f"the {len(wanted.encode())} bytes sent", describe(answer))
    body: object = _NOT_JSON
    if any(_needs_json(e) for e in step.expect):
        try:
            body = parse_json(answer)
        except Mismatch:
            body = _NOT_JSON  # each expectation then says what it wanted of the body
    for e in step.expect:
        got = _unmet(e, body, answer, values)
        if got is not None:
            raise Mismatch(expectation_text(e, values), got)


def _needs_json(e: Expect) -> bool:
    return e.subject == "field" or any(_needs_json(a) for a in e.alternatives)


def _unmet(e: Expect, body: object, answer: Recorded, values: Mapping[str, str]) -> str | None:
    """None when met, else what was found instead."""
    if e.subject == "any":
        misses = [_unmet(a, body, answer, values) for a in e.alternatives]
        met = any(m is None for m in misses)
        return None if met else "; ".join(dict.fromkeys(m for m in misses if m))
    if e.subject == "header":
        return _unmet_header(e, answer, values)
    if body is _NOT_JSON:
        return f"{answer.status} non-JSON body"
    actual = field_value(body, e.target)
    if _field_met(e, actual, values):
        return None
    label = e.target or "body"
    if actual is _MISSING:
        return f"{label} absent" if e.op == "present" else f"{label} absent in {_short_json(body)}"
    return f"{label} = {_short_json(actual)}"


def _unmet_header(e: Expect, answer: Recorded, values: Mapping[str, str]) -> str | None:
    actual = answer.headers.get(e.target)
    if e.op == "present":
        met = (actual is not None) == e.value
    else:
        met = actual == substitute(cast(str, e.value), values)
    if met:
        return None
    if actual is None:
        return f"no {e.target} header"
    return f"header {e.target} = {json.dumps(actual)}"


def _field_met(e: Expect, actual: object, values: Mapping[str, str]) -> bool:
    if e.op == "present":
        return (actual is not _MISSING) == e.value
    if actual is _MISSING:
        return False
    if e.op == "type":
        return json_type(actual) == e.value
    wanted = substitute(e.value, values) if isinstance(e.value, str) else e.value
    if e.op == "equals":
        return same(actual, wanted)
    if isinstance(actual, list):
        return any(same(item, wanted) for item in actual)
    return isinstance(actual, str) and isinstance(wanted, str) and wanted in actual


# --- values and words --------------------------------------------------------------------


def parse_json(answer: Recorded) -> object:
    try:
        return json.loads(answer.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Mismatch("a JSON body", f"{answer.status} non-JSON body") from exc


def field_value(body: object, path: str) -> object:
    """The value at a dotted path (list items by index); _MISSING when there is none."""
    current = body
    for part in path.split(".") if path else []:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def same(actual: object, wanted: object) -> bool:
    """Equal and of the same JSON type: true is not 1."""
    return json_type(actual) == json_type(wanted) and actual == wanted


def _short_json(value: object, limit: int = 80) -> str:
    return one_line(json.dumps(value, ensure_ascii=False), limit)


def describe(answer: Recorded) -> str:
    body = one_line(answer.text, 80) if answer.body else "empty body"
    return f"{answer.status} {body}"


def status_text(codes: tuple[int, ...]) -> str:
    return " or ".join(str(c) for c in codes)


def expectation_text(e: Expect, values: Mapping[str, str] | None = None) -> str:
    """An expectation in words; with ``values``, variables are shown resolved."""
    if e.subject == "any":
        return "(" + " or ".join(expectation_text(a, values) for a in e.alternatives) + ")"
    value = e.value
    if isinstance(value, str) and values is not None and e.op in ("equals", "contains"):
        value = substitute(value, values)
    if e.subject == "header":
        if e.op == "present":
            return f"header {e.target} {'present' if e.value else 'absent'}"
        shown = value if isinstance(value, str) and "${" in value else json.dumps(value)
        return f"header {e.target} = {shown}"
    label = e.target or "body"
    if e.op == "present":
        return f"{label} {'present' if e.value else 'absent'}"
    if e.op == "type":
        article = {"null": "", "list": "a ", "object": "an "}.get(str(value), "a ")
        return f"{label} is {article}{value}"
    shown = value if isinstance(value, str) and "${" in value else json.dumps(value)
    return f"{label} {'=' if e.op == 'equals' else 'contains'} {shown}"


def summary(step: Step, *, with_headers: bool = False) -> str:
    """What a passing HTTP step verified, with variables left as written; `with_headers` tells
    steps to the same route apart (the Host-spoof check's three hosts)."""
    said = f"{step.method} {step.path}"
    if with_headers and step.headers:
        said += " (" + ", ".join(f"{k}: {v}" for k, v in step.headers) + ")"
    if step.status:
        said += f" {status_text(step.status)}"
    checks = [expectation_text(e) for e in step.expect]
    if step.text is not None:
        checks.insert(0, f"text {step.text.strip()!r}")
    if step.body is not None:
        checks.insert(0, f"body = {step.body}")
    return said + (f": {', '.join(checks)}" if checks else "")
