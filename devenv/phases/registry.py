"""Load and validate the phase registry (registry.toml) into frozen dataclasses."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeVar, cast

from devenv.checks.ids import CHECK_NAMES
from devenv.errors import ConfigError
from devenv.graph import find_cycle
from devenv.model import SERVICES

DEFAULT_REGISTRY = Path(__file__).with_name("registry.toml")

Part = Literal["local", "production"]
PARTS: tuple[Part, ...] = ("local", "production")
Category = Literal["provisioning", "deployment"]
CATEGORIES: tuple[Category, ...] = ("provisioning", "deployment")
PART_STATUSES = ("complete", "open")

_Item = TypeVar("_Item", "Phase", "Decision", "LaterItem")
_Choice = TypeVar("_Choice", bound=str)


@dataclass(frozen=True)
class Phase:
    id: str
    name: str
    needs: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    later: tuple[str, ...] = ()
    local_checks: tuple[str, ...] = ()
    local_complete: bool = False
    production_complete: bool = False


@dataclass(frozen=True)
class Decision:
    id: str
    name: str
    chosen: bool
    choice: str = ""


@dataclass(frozen=True)
class LaterItem:
    id: str
    what: str
    category: Category = "provisioning"
    service: str | None = None
    stand_in: str | None = None
    stand_in_exists: bool = True
    resolved_by: str | None = None
    blocks: tuple[str, ...] = ()  # derived: the phases that list this item


@dataclass(frozen=True)
class Unknown:
    id: str
    what: str
    status: str
    action: str = ""
    blocks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    what: str
    phase: str
    part: Part
    note: str = ""
    gated_by: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Registry:
    source: str
    phases: tuple[Phase, ...]
    decisions: tuple[Decision, ...]
    later: tuple[LaterItem, ...]
    unknowns: tuple[Unknown, ...]
    actions: tuple[Action, ...]

    def phase(self, phase_id: str) -> Phase:
        return _by_id(self.phases, phase_id)

    def decision(self, decision_id: str) -> Decision:
        return _by_id(self.decisions, decision_id)

    def later_item(self, later_id: str) -> LaterItem:
        return _by_id(self.later, later_id)


def _by_id(items: Sequence[_Item], wanted: str) -> _Item:
    for item in items:
        if item.id == wanted:
            return item
    raise KeyError(wanted)


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate a registry file; the packaged registry.toml when no path is given."""
    target = path or DEFAULT_REGISTRY
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the phase registry: {exc.strerror}", file=str(target)
        ) from exc
    return parse_registry(text, file=str(target) if path else "registry.toml")


def parse_registry(text: str, *, file: str = "registry.toml") -> Registry:
    """Parse registry TOML text; every problem is a ConfigError naming the file and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from exc
    return _Loader(file).load(data)


class _Loader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, key=key, hint=hint)

    # --- typed field readers -------------------------------------------------------------

    def tables(self, data: Mapping[str, object], name: str) -> list[tuple[str, dict[str, object]]]:
        raw = data.get(name, [])
        if not isinstance(raw, list):
            raise self.fail(name, f"expected an array of tables ([[{name}]]), got {_kind(raw)}")
        out: list[tuple[str, dict[str, object]]] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(f"{name}[{i}]", f"expected a table, got {_kind(item)}")
            ident = item.get("id")
            key = f"{name} → {ident}" if isinstance(ident, str) and ident else f"{name}[{i}]"
            out.append((key, cast(dict[str, object], item)))
        return out

    def only(self, key: str, table: Mapping[str, object], allowed: Sequence[str]) -> None:
        for name in table:
            if name not in allowed:
                raise self.fail(
                    f"{key} → {name}", "unknown field", hint=f"allowed: {', '.join(allowed)}"
                )

    def string(
        self, key: str, table: Mapping[str, object], name: str, default: str | None = None
    ) -> str:
        value = table.get(name, default)
        if value is None:
            raise self.fail(f"{key} → {name}", "required field is missing")
        if not isinstance(value, str):
            raise self.fail(f"{key} → {name}", f"expected a string, got {_kind(value)}")
        return value

    def optional_string(self, key: str, table: Mapping[str, object], name: str) -> str | None:
        if name not in table:
            return None
        return self.string(key, table, name)

    def boolean(self, key: str, table: Mapping[str, object], name: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key} → {name}", f"expected true or false, got {_kind(value)}")
        return value

    def strings(self, key: str, table: Mapping[str, object], name: str) -> tuple[str, ...]:
        value = table.get(name, [])
        if not isinstance(value, list):
            raise self.fail(f"{key} → {name}", f"expected a list of strings, got {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{key} → {name}[{i}]", f"expected a string, got {_kind(item)}")
        return tuple(cast(list[str], value))

    def choice(self, key: str, value: str, allowed: Sequence[_Choice]) -> _Choice:
        for option in allowed:
            if value == option:
                return option
        raise self.fail(key, f"unknown value {value!r}", hint=f"one of: {', '.join(allowed)}")

    # --- sections ------------------------------------------------------------------------

    def load(self, data: Mapping[str, object]) -> Registry:
        self.only("(top level)", data, ("phase", "decision", "later", "unknown", "action"))
        phases = [self.phase(k, t) for k, t in self.tables(data, "phase")]
        decisions = [self.decision(k, t) for k, t in self.tables(data, "decision")]
        later = [self.later_item(k, t) for k, t in self.tables(data, "later")]
        unknowns = [self.unknown(k, t) for k, t in self.tables(data, "unknown")]
        actions = [self.action(k, t) for k, t in self.tables(data, "action")]
        self.check_unique(phases, decisions, later, unknowns, actions)
        self.check_references(phases, decisions, later, unknowns, actions)
        self.check_acyclic(phases)
        later = [
            replace(item, blocks=tuple(p.id for p in phases if item.id in p.later))
            for item in later
        ]
        return Registry(
            source=self.file,
            phases=tuple(phases),
            decisions=tuple(decisions),
            later=tuple(later),
            unknowns=tuple(unknowns),
            actions=tuple(actions),
        )

    def phase(self, key: str, t: Mapping[str, object]) -> Phase:
        self.only(key, t, ("id", "name", "needs", "decisions", "later", "local_checks", "status"))
        status = t.get("status", {})
        if not isinstance(status, dict):
            raise self.fail(f"{key} → status", f"expected a table, got {_kind(status)}")
        self.only(f"{key} → status", status, PARTS)
        done = {
            part: self.choice(
                f"{key} → status → {part}",
                self.string(f"{key} → status", status, part, "open"),
                PART_STATUSES,
            )
            == "complete"
            for part in PARTS
        }
        return Phase(
            id=self.string(key, t, "id"),
            name=self.string(key, t, "name"),
            needs=self.strings(key, t, "needs"),
            decisions=self.strings(key, t, "decisions"),
            later=self.strings(key, t, "later"),
            local_checks=self.strings(key, t, "local_checks"),
            local_complete=done["local"],
            production_complete=done["production"],
        )

    def decision(self, key: str, t: Mapping[str, object]) -> Decision:
        self.only(key, t, ("id", "name", "chosen", "choice"))
        return Decision(
            id=self.prefixed(key, self.string(key, t, "id"), "DEC-"),
            name=self.string(key, t, "name"),
            chosen=self.boolean(key, t, "chosen", False),
            choice=self.string(key, t, "choice", ""),
        )

    def later_item(self, key: str, t: Mapping[str, object]) -> LaterItem:
        self.only(
            key,
            t,
            ("id", "what", "category", "service", "stand_in", "stand_in_exists", "resolved_by"),
        )
        service = self.optional_string(key, t, "service")
        if service is not None and service not in SERVICES:
            raise self.fail(
                f"{key} → service",
                f"unknown service {service!r}",
                hint=f"one of: {', '.join(SERVICES)}",
            )
        return LaterItem(
            id=self.prefixed(key, self.string(key, t, "id"), "LATER-"),
            what=self.string(key, t, "what"),
            category=self.choice(
                f"{key} → category", self.string(key, t, "category", "provisioning"), CATEGORIES
            ),
            service=service,
            stand_in=self.optional_string(key, t, "stand_in"),
            stand_in_exists=self.boolean(key, t, "stand_in_exists", True),
            resolved_by=self.optional_string(key, t, "resolved_by"),
        )

    def unknown(self, key: str, t: Mapping[str, object]) -> Unknown:
        self.only(key, t, ("id", "what", "status", "action", "blocks"))
        return Unknown(
            id=self.prefixed(key, self.string(key, t, "id"), "UNKNOWN-"),
            what=self.string(key, t, "what"),
            status=self.string(key, t, "status"),
            action=self.string(key, t, "action", ""),
            blocks=self.strings(key, t, "blocks"),
        )

    def action(self, key: str, t: Mapping[str, object]) -> Action:
        self.only(key, t, ("what", "phase", "part", "note", "gated_by"))
        what = self.string(key, t, "what")
        key = f"action → {what}"
        return Action(
            what=what,
            phase=self.string(key, t, "phase"),
            part=self.choice(f"{key} → part", self.string(key, t, "part"), PARTS),
            note=self.string(key, t, "note", ""),
            gated_by=self.strings(key, t, "gated_by") if "gated_by" in t else None,
        )

    def prefixed(self, key: str, ident: str, prefix: str) -> str:
        if not ident.startswith(prefix):
            raise self.fail(f"{key} → id", f"id {ident!r} must start with {prefix!r}")
        return ident

    # --- cross-references ----------------------------------------------------------------

    def check_unique(
        self,
        phases: Sequence[Phase],
        decisions: Sequence[Decision],
        later: Sequence[LaterItem],
        unknowns: Sequence[Unknown],
        actions: Sequence[Action],
    ) -> None:
        seen: dict[str, str] = {}
        entries = [
            *(("phase", p.id) for p in phases),
            *(("decision", d.id) for d in decisions),
            *(("later", item.id) for item in later),
            *(("unknown", u.id) for u in unknowns),
            *(("action", a.what) for a in actions),
        ]
        for section, ident in entries:
            if ident in seen:
                raise self.fail(
                    f"{section} → {ident}",
                    f"duplicate id {ident!r} (already used by a {seen[ident]})",
                )
            seen[ident] = section

    def check_references(
        self,
        phases: Sequence[Phase],
        decisions: Sequence[Decision],
        later: Sequence[LaterItem],
        unknowns: Sequence[Unknown],
        actions: Sequence[Action],
    ) -> None:
        phase_ids = {p.id for p in phases}
        decision_ids = {d.id for d in decisions}
        later_ids = {item.id for item in later}

        def known(key: str, ids: Sequence[str], pool: set[str], what: str) -> None:
            for i, ident in enumerate(ids):
                if ident not in pool:
                    raise self.fail(
                        f"{key}[{i}]",
                        f"unknown {what} {ident!r}",
                        hint=f"known: {', '.join(sorted(pool)) or 'none'}",
                    )

        for p in phases:
            key = f"phase → {p.id}"
            known(f"{key} → needs", p.needs, phase_ids, "phase")
            known(f"{key} → decisions", p.decisions, decision_ids, "decision")
            known(f"{key} → later", p.later, later_ids, "LATER item")
            for i, check in enumerate(p.local_checks):
                if check not in CHECK_NAMES:
                    raise self.fail(
                        f"{key} → local_checks[{i}]",
                        f"unknown check id {check!r}",
                        hint="use an id from devenv.checks.ids",
                    )
        for item in later:
            if item.resolved_by is not None and item.resolved_by not in decision_ids:
                raise self.fail(
                    f"later → {item.id} → resolved_by",
                    f"unknown decision {item.resolved_by!r}",
                )
        for u in unknowns:
            known(f"unknown → {u.id} → blocks", u.blocks, phase_ids, "phase")
        for a in actions:
            key = f"action → {a.what}"
            if a.phase not in phase_ids:
                raise self.fail(f"{key} → phase", f"unknown phase {a.phase!r}")
            if a.gated_by is not None:
                known(f"{key} → gated_by", a.gated_by, phase_ids | decision_ids | later_ids, "id")

    def check_acyclic(self, phases: Sequence[Phase]) -> None:
        cycle = find_cycle({p.id: p.needs for p in phases})
        if cycle:
            raise self.fail(
                f"phase → {cycle[0]} → needs",
                f"dependency cycle: {' → '.join(cycle)}",
                hint="remove one of these prerequisites",
            )


def _kind(value: object) -> str:
    return {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
