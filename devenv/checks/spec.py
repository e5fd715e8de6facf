"""Load and validate a route-contract file (contracts/*.toml) into frozen check specifications."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar, cast

from devenv.config.compose import describe_type, did_you_mean
from devenv.errors import ConfigError
from devenv.model import SERVICES, Level

LEVELS: tuple[Level, ...] = ("required", "advisory")
When = Literal["bypass", "no_bypass"]
WHENS: tuple[When, ...] = ("bypass", "no_bypass")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
JsonType = Literal["null", "boolean", "number", "string", "list", "object"]
JSON_TYPES: tuple[JsonType, ...] = ("null", "boolean", "number", "string", "list", "object")
Op = Literal["equals", "type", "present", "contains"]
OPS: tuple[Op, ...] = ("equals", "type", "present", "contains")

# Generated for every run of a check; a contract's [vars] may not redefine them.
BUILTIN_VARIABLES = ("uuid", "payload", "request_id", "dev_user_id")

_VAR = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_ID = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")

TOP_KEYS = ("description", "extends", "vars", "levels", "check")
CHECK_KEYS = ("id", "name", "level", "needs", "when", "why", "step", "cleanup")
STEP_KEYS = (
    *("method", "path", "headers", "json", "multipart", "status", "text", "body", "expect"),
    *("capture", "on_fail", "object", "present"),
)
FILE_PART_KEYS = ("content", "filename", "content_type")
EXPECT_SUBJECTS = ("field", "header", "any")

_Choice = TypeVar("_Choice", bound=str)


@dataclass(frozen=True)
class Expect:
    """One expectation on a response: a JSON field, a header, or any of several alternatives."""

    subject: Literal["field", "header", "any"]
    target: str = ""  # dotted JSON path ("" = the whole body) or a lower-case header name
    op: Op = "present"
    value: object = True
    alternatives: tuple[Expect, ...] = ()


@dataclass(frozen=True)
class FilePart:
    field: str
    content: str
    filename: str = "devenv-probe.txt"
    content_type: str = "text/plain"


@dataclass(frozen=True)
class Step:
    """An HTTP exchange (``path``) or an assertion on the bucket (``object``)."""

    method: str = "GET"
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    json: object = None  # request body; None = no JSON body (TOML has no null)
    form: tuple[tuple[str, str], ...] = ()
    files: tuple[FilePart, ...] = ()
    status: tuple[int, ...] = ()  # empty: any status
    text: str | None = None  # the body, trimmed, equals this
    body: str | None = None  # the body equals these bytes (UTF-8) exactly
    expect: tuple[Expect, ...] = ()
    capture: tuple[tuple[str, str], ...] = ()  # (variable, JSON path)
    on_fail: str | None = None  # said first when this step fails
    object: str | None = None  # bucket key
    present: bool = True

    @property
    def is_bucket(self) -> bool:
        return self.object is not None


@dataclass(frozen=True)
class CheckSpec:
    id: str
    name: str
    level: Level = "required"
    needs: tuple[str, ...] = ("backend",)
    when: When | None = None
    why: str = ""
    steps: tuple[Step, ...] = ()
    cleanup: tuple[Step, ...] = ()

    def applies(self, bypass: bool) -> bool:
        return self.when is None or (self.when == "bypass") == bypass


@dataclass(frozen=True)
class Selected:
    """The entry of one check id that applies to this run, or why none does."""

    id: str
    name: str
    level: Level
    needs: tuple[str, ...]
    spec: CheckSpec | None
    skip_reason: str = ""


@dataclass(frozen=True)
class Contract:
    source: str
    description: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    checks: tuple[CheckSpec, ...] = ()
    chain: tuple[str, ...] = ()  # the files read, base first

    def ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.id for c in self.checks))

    def select(self, *, bypass: bool) -> list[Selected]:
        """One entry per check id, in file order: the variant for this bypass mode."""
        out: list[Selected] = []
        for check_id in self.ids():
            entries = [c for c in self.checks if c.id == check_id]
            chosen = next((c for c in entries if c.applies(bypass)), None)
            if chosen is not None:
                out.append(Selected(chosen.id, chosen.name, chosen.level, chosen.needs, chosen))
                continue
            first = entries[0]
            reason = (
                "skipped: needs a session, and the dev auth bypass is off"
                if bypass is False
                else "skipped: applies only with the dev auth bypass off"
            )
            out.append(Selected(first.id, first.name, first.level, first.needs, None, reason))
        return out


# --- loading -----------------------------------------------------------------------------


def load_contract(path: Path, *, display: Callable[[Path], str] = str) -> Contract:
    """Read a contract file and the chain it extends; every problem is a one-line ConfigError."""
    return _load(path, display, seen=())


def parse_contract(text: str, *, file: str = "contract.toml") -> Contract:
    """Parse contract TOML text that extends nothing (for tests and tools)."""
    data = _parse(text, file)
    if "extends" in data:
        raise ConfigError("`extends` needs a file on disk", file=file, key="extends")
    return _Loader(file).load(data, base=None)


def _parse(text: str, file: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(f"invalid TOML: {detail}", file=file) from exc


def _load(path: Path, display: Callable[[Path], str], *, seen: tuple[Path, ...]) -> Contract:
    file = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot read the route contract: {reason}",
            file=file,
            hint="restore the file, or point services.backend.contract at one that exists",
        ) from exc
    data = _parse(text, file)
    base: Contract | None = None
    parent = data.get("extends")
    if parent is not None:
        if not isinstance(parent, str) or not parent.strip():
            raise ConfigError(
                f"expected a file name, got {describe_type(parent)}", file=file, key="extends"
            )
        target = (path.parent / parent).resolve()
        if target in seen or target == path.resolve():
            chain = " → ".join(display(p) for p in (*seen, path.resolve(), target))
            raise ConfigError(f"extends cycle: {chain}", file=file, key="extends")
        if not target.is_file():
            raise ConfigError(f"extends {parent!r}, which does not exist", file=file, key="extends")
        base = _load(target, display, seen=(*seen, path.resolve()))
    return _Loader(file).load(data, base=base)


class _Loader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, key=key, hint=hint)

    # --- typed readers -------------------------------------------------------------------

    def only(self, key: str, table: Mapping[str, object], allowed: Sequence[str]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key} → {name}" if key else name
                raise self.fail(
                    where,
                    "unknown key" + did_you_mean(name, allowed),
                    hint=f"allowed: {', '.join(allowed)}",
                )

    def table(self, key: str, value: object) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {describe_type(value)}")
        return cast(dict[str, object], value)

    def tables(self, key: str, value: object) -> list[dict[str, object]]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array of tables, got {describe_type(value)}")
        return [self.table(f"{key}[{i}]", item) for i, item in enumerate(value)]

    def string(self, key: str, value: object, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {describe_type(value)}")
        if not empty and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def strings(self, key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {describe_type(value)}")
        return tuple(self.string(f"{key}[{i}]", item) for i, item in enumerate(value))

    def boolean(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {describe_type(value)}")
        return value

    def choice(self, key: str, value: object, allowed: Sequence[_Choice]) -> _Choice:
        text = self.string(key, value)
        for option in allowed:
            if text == option:
                return option
        raise self.fail(
            key,
            f"unknown value {text!r}" + did_you_mean(text, allowed),
            hint=f"one of: {', '.join(allowed)}",
        )

    def string_map(self, key: str, value: object) -> tuple[tuple[str, str], ...]:
        table = self.table(key, value)
        return tuple((k, self.string(f"{key} → {k}", v, empty=True)) for k, v in table.items())

    # --- the file ------------------------------------------------------------------------

    def load(self, data: Mapping[str, object], *, base: Contract | None) -> Contract:
        self.only("", data, TOP_KEYS)
        description = data.get("description", base.description if base else "")
        description = self.string("description", description, empty=True)
        variables = dict(base.variables) if base else {}
        for name, value in self.string_map("vars", data.get("vars", {})):
            if not _NAME.fullmatch(name):
                raise self.fail(f"vars → {name}", "a name is lower-case letters, digits and _")
            if name in BUILTIN_VARIABLES:
                raise self.fail(
                    f"vars → {name}",
                    f"`{name}` is generated for every run and cannot be set",
                    hint=f"generated: {', '.join(BUILTIN_VARIABLES)}",
                )
            variables[name] = value
        checks = list(base.checks) if base else []
        inherited = len(checks)
        for i, table in enumerate(self.tables("check", data.get("check", []))):
            checks.append(self.check(i, table, variables))
        self.check_unique(checks, inherited)
        checks = self.apply_levels(checks, data.get("levels", {}))
        if not checks:
            raise self.fail("check", "the contract defines no checks", hint="add a [[check]] table")
        chain = (*base.chain, self.file) if base else (self.file,)
        return Contract(self.file, description, variables, tuple(checks), chain)

    def check(self, index: int, t: Mapping[str, object], variables: Mapping[str, str]) -> CheckSpec:
        raw_id = t.get("id")
        key = f"check → {raw_id}" if isinstance(raw_id, str) and raw_id else f"check[{index}]"
        self.only(key, t, CHECK_KEYS)
        for required in ("id", "name", "step"):
            if required not in t:
                raise self.fail(f"{key} → {required}", "required key is missing")
        check_id = self.string(f"{key} → id", t["id"])
        if not _ID.fullmatch(check_id):
            raise self.fail(f"{key} → id", "an id is dotted lower-case words, e.g. `route.health`")
        needs = self.strings(f"{key} → needs", t.get("needs", ["backend"]))
        for i, service in enumerate(needs):
            if service not in SERVICES:
                raise self.fail(
                    f"{key} → needs[{i}]",
                    f"unknown service {service!r}" + did_you_mean(service, SERVICES),
                    hint=f"services: {', '.join(SERVICES)}",
                )
        when = self.choice(f"{key} → when", t["when"], WHENS) if "when" in t else None
        known = set(variables) | set(BUILTIN_VARIABLES)
        steps: list[Step] = []
        for i, st in enumerate(self.tables(f"{key} → step", t["step"])):
            step = self.step(f"{key} → step[{i}]", st, known)
            known |= {name for name, _path in step.capture}
            steps.append(step)
        if not steps:
            raise self.fail(f"{key} → step", "a check needs at least one step")
        cleanup = [
            self.step(f"{key} → cleanup[{i}]", st, known, cleanup=True)
            for i, st in enumerate(self.tables(f"{key} → cleanup", t.get("cleanup", [])))
        ]
        if any(s.is_bucket for s in steps) and "objectstore" not in needs:
            raise self.fail(
                f"{key} → needs",
                "a step asserts on the bucket, so `needs` must list objectstore",
            )
        return CheckSpec(
            id=check_id,
            name=self.string(f"{key} → name", t["name"]),
            level=self.choice(f"{key} → level", t.get("level", "required"), LEVELS),
            needs=needs,
            when=when,
            why=self.string(f"{key} → why", t.get("why", ""), empty=True),
            steps=tuple(steps),
            cleanup=tuple(cleanup),
        )

    def step(
        self, key: str, t: Mapping[str, object], known: set[str], *, cleanup: bool = False
    ) -> Step:
        self.only(key, t, STEP_KEYS)
        if ("path" in t) == ("object" in t):
            raise self.fail(key, "a step has either `path` (HTTP) or `object` (bucket)")
        if "object" in t:
            extra = sorted(set(t) - {"object", "present", "on_fail"})
            if extra:
                raise self.fail(f"{key} → {extra[0]}", "a bucket step takes only object, present")
            if cleanup:
                raise self.fail(key, "a cleanup step is an HTTP request")
            step = Step(
                object=self.string(f"{key} → object", t["object"]),
                present=self.boolean(f"{key} → present", t.get("present", True)),
                on_fail=self.optional(key, t, "on_fail"),
            )
            self.variables(key, step, known)
            return step
        if "present" in t:
            raise self.fail(f"{key} → present", "`present` belongs to a bucket step (`object`)")
        path = self.string(f"{key} → path", t["path"])
        if not path.startswith("/"):
            raise self.fail(f"{key} → path", f"expected a path starting with '/', got {path!r}")
        if "json" in t and "multipart" in t:
            raise self.fail(key, "a request has one body: `json` or `multipart`, not both")
        form, files = self.multipart(f"{key} → multipart", t.get("multipart", {}))
        step = Step(
            method=self.choice(f"{key} → method", t.get("method", "GET"), METHODS),
            path=path,
            headers=self.string_map(f"{key} → headers", t.get("headers", {})),
            json=t.get("json"),
            form=form,
            files=files,
            status=self.status(f"{key} → status", t.get("status", [])),
            text=self.optional(key, t, "text"),
            body=self.optional(key, t, "body"),
            expect=tuple(
                self.expect(f"{key} → expect[{i}]", e)
                for i, e in enumerate(self.tables(f"{key} → expect", t.get("expect", [])))
            ),
            capture=self.captures(f"{key} → capture", t.get("capture", {})),
            on_fail=self.optional(key, t, "on_fail"),
        )
        self.variables(key, step, known)
        return step

    def optional(self, key: str, t: Mapping[str, object], name: str) -> str | None:
        return self.string(f"{key} → {name}", t[name], empty=True) if name in t else None

    def status(self, key: str, value: object) -> tuple[int, ...]:
        codes = value if isinstance(value, list) else [value]
        out: list[int] = []
        for i, code in enumerate(codes):
            where = key if not isinstance(value, list) else f"{key}[{i}]"
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                raise self.fail(where, f"expected an HTTP status (100-599), got {code!r}")
            out.append(code)
        return tuple(out)

    def multipart(
        self, key: str, value: object
    ) -> tuple[tuple[tuple[str, str], ...], tuple[FilePart, ...]]:
        form: list[tuple[str, str]] = []
        files: list[FilePart] = []
        for name, part in self.table(key, value).items():
            if isinstance(part, str):
                form.append((name, part))
                continue
            t = self.table(f"{key} → {name}", part)
            self.only(f"{key} → {name}", t, FILE_PART_KEYS)
            if "content" not in t:
                raise self.fail(f"{key} → {name} → content", "required key is missing")
            defaults = FilePart(name, "")
            files.append(
                FilePart(
                    field=name,
                    content=self.string(f"{key} → {name} → content", t["content"], empty=True),
                    filename=self.string(
                        f"{key} → {name} → filename", t.get("filename", defaults.filename)
                    ),
                    content_type=self.string(
                        f"{key} → {name} → content_type",
                        t.get("content_type", defaults.content_type),
                    ),
                )
            )
        return tuple(form), tuple(files)

    def captures(self, key: str, value: object) -> tuple[tuple[str, str], ...]:
        out = self.string_map(key, value)
        for name, _path in out:
            if not _NAME.fullmatch(name) or name in BUILTIN_VARIABLES:
                raise self.fail(
                    f"{key} → {name}", "capture into a lower-case name that is not generated"
                )
        return out

    def expect(self, key: str, t: Mapping[str, object]) -> Expect:
        subjects = [s for s in EXPECT_SUBJECTS if s in t]
        if len(subjects) != 1:
            raise self.fail(
                key,
                "an expectation names one of `field`, `header` or `any`",
                hint='e.g. { field = "status", equals = "healthy" }',
            )
        if subjects[0] == "any":
            self.only(key, t, ("any",))
            options = [
                self.expect(f"{key} → any[{i}]", o)
                for i, o in enumerate(self.tables(f"{key} → any", t["any"]))
            ]
            if len(options) < 2:
                raise self.fail(f"{key} → any", "list at least two alternatives")
            return Expect("any", alternatives=tuple(options))
        subject: Literal["field", "header"] = "header" if subjects[0] == "header" else "field"
        self.only(key, t, (subject, *OPS))
        ops = [op for op in OPS if op in t]
        if len(ops) != 1:
            raise self.fail(key, f"say one of: {', '.join(OPS)}")
        op = ops[0]
        target = self.string(f"{key} → {subject}", t[subject], empty=subject == "field")
        value: object = t[op]
        if op == "type":
            value = self.choice(f"{key} → type", value, JSON_TYPES)
        elif op == "present":
            value = self.boolean(f"{key} → present", value)
        elif subject == "header":
            if op == "contains" or not isinstance(value, str):
                raise self.fail(f"{key} → {op}", "a header is compared with a string (`equals`)")
        elif isinstance(value, dict | list | float):
            raise self.fail(f"{key} → {op}", "compare with a string, integer or boolean")
        return Expect(subject, target.lower() if subject == "header" else target, op, value)

    def variables(self, key: str, step: Step, known: set[str]) -> None:
        for where, text in _templates(step):
            for name in _VAR.findall(text):
                if name not in known:
                    raise self.fail(
                        f"{key} → {where}",
                        f"unknown variable ${{{name}}}" + did_you_mean(name, known),
                        hint=f"defined here: {', '.join(sorted(known))}",
                    )

    # --- the whole set -------------------------------------------------------------------

    def check_unique(self, checks: Sequence[CheckSpec], inherited: int) -> None:
        by_id: dict[str, list[CheckSpec]] = {}
        for check in checks:
            by_id.setdefault(check.id, []).append(check)
        for check_id, entries in by_id.items():
            if len(entries) == 1:
                continue
            whens = [e.when for e in entries]
            if None in whens or len(set(whens)) != len(whens):
                again = "inherited from the contract it extends; change its level in [levels]"
                hint = again if any(checks.index(e) < inherited for e in entries) else None
                raise self.fail(
                    f"check → {check_id}",
                    "defined twice; entries sharing an id need different `when` values",
                    hint=hint or f"set when = {' or '.join(repr(w) for w in WHENS)} on each",
                )

    def apply_levels(self, checks: list[CheckSpec], value: object) -> list[CheckSpec]:
        levels = self.table("levels", value)
        ids = list(dict.fromkeys(c.id for c in checks))
        for check_id, raw in levels.items():
            if check_id not in ids:
                raise self.fail(
                    f"levels → {check_id}", "unknown check id" + did_you_mean(check_id, ids)
                )
            level = self.choice(f"levels → {check_id}", raw, LEVELS)
            checks = [replace(c, level=level) if c.id == check_id else c for c in checks]
        return checks


def _templates(step: Step) -> Iterable[tuple[str, str]]:
    """Every string of a step that may hold ${variables}, with the key it came from."""
    if step.path is not None:
        yield "path", step.path
    if step.object is not None:
        yield "object", step.object
    for name, value in step.headers:
        yield f"headers → {name}", value
    for name, value in step.form:
        yield f"multipart → {name}", value
    for part in step.files:
        yield f"multipart → {part.field} → content", part.content
    yield from (("json", text) for text in _json_strings(step.json))
    for name in ("text", "body", "on_fail"):
        value = getattr(step, name)
        if value is not None:
            yield name, value
    for i, e in enumerate(step.expect):
        yield from ((f"expect[{i}]", text) for text in _expect_strings(e))


def _expect_strings(e: Expect) -> Iterable[str]:
    if isinstance(e.value, str) and e.op in ("equals", "contains"):
        yield e.value
    for alternative in e.alternatives:
        yield from _expect_strings(alternative)


def _json_strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def variables_in(text: str) -> list[str]:
    return _VAR.findall(text)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ${name} with its value; callers validated every name at load time."""
    return _VAR.sub(lambda m: values[m.group(1)], text)
