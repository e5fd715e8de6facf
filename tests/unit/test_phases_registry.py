"""Registry loading: the shipped file is valid, and each kind of mistake names file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.errors import ConfigError
from devenv.phases.registry import load_registry, parse_registry

BASE = """
[[phase]]
id = "a"
name = "A"

[[phase]]
id = "b"
name = "B"
needs = ["a"]
decisions = ["DEC-001"]
later = ["LATER-001"]
local_checks = ["postgres.ready"]

[[decision]]
id = "DEC-001"
name = "D"
chosen = true

[[later]]
id = "LATER-001"
what = "Postgres"
service = "postgres"
stand_in = "container"
"""


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_registry(text, file="reg.toml")
    assert caught.value.file == "reg.toml"
    return caught.value


def test_shipped_registry_encodes_the_seed() -> None:
    registry = load_registry()
    assert [p.id for p in registry.phases][:6] == [
        "06",
        "07",
        "frontend-move",
        "admin-move",
        "08",
        "11",
    ]
    assert registry.later_item("LATER-001").blocks == ("08", "11", "23", "26")
    assert registry.later_item("LATER-002").blocks == ("08", "23", "26")
    assert registry.later_item("LATER-003").blocks == ("14", "23", "26")
    assert registry.later_item("LATER-011").blocks == ("26",)
    assert not registry.later_item("LATER-011").stand_in_exists
    assert all(d.chosen for d in registry.decisions)
    assert [a.phase for a in registry.actions] == ["11", "11", "11", "14", "11", "08"]
    assert registry.phase("08").local_complete
    assert not registry.phase("08").production_complete
    assert registry.unknowns[0].id == "UNKNOWN-011"
    assert registry.unknowns[0].blocks == ()


def test_minimal_registry_parses() -> None:
    registry = parse_registry(BASE)
    assert registry.phase("b").needs == ("a",)
    assert registry.later_item("LATER-001").blocks == ("b",)


def test_unknown_prerequisite() -> None:
    err = error_for(BASE.replace('needs = ["a"]', 'needs = ["a", "zz"]'))
    assert err.key == "phase → b → needs[1]"
    assert "unknown phase 'zz'" in err.message


def test_cycle_shows_the_path() -> None:
    text = BASE.replace('id = "a"\nname = "A"', 'id = "a"\nname = "A"\nneeds = ["b"]')
    err = error_for(text)
    assert "dependency cycle: a → b → a" in err.message
    assert err.key == "phase → a → needs"


def test_self_cycle() -> None:
    err = error_for(BASE.replace('needs = ["a"]', 'needs = ["b"]'))
    assert "dependency cycle: b → b" in err.message


def test_duplicate_id() -> None:
    err = error_for(BASE + '\n[[phase]]\nid = "a"\nname = "again"\n')
    assert err.key == "phase → a"
    assert "duplicate id 'a'" in err.message


def test_unknown_check_id() -> None:
    err = error_for(BASE.replace('"postgres.ready"', '"postgres.reddy"'))
    assert err.key == "phase → b → local_checks[0]"
    assert "unknown check id 'postgres.reddy'" in err.message


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        (
            'decisions = ["DEC-001"]',
            'decisions = ["DEC-009"]',
            "phase → b → decisions[0]",
            "unknown decision 'DEC-009'",
        ),
        (
            'later = ["LATER-001"]',
            'later = ["LATER-404"]',
            "phase → b → later[0]",
            "unknown LATER item 'LATER-404'",
        ),
        (
            'stand_in = "container"',
            'resolved_by = "DEC-404"',
            "later → LATER-001 → resolved_by",
            "unknown decision 'DEC-404'",
        ),
    ],
)
def test_unknown_decision_or_later_reference(old: str, new: str, key: str, message: str) -> None:
    err = error_for(BASE.replace(old, new))
    assert err.key == key
    assert message in err.message


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        (
            'needs = ["a"]',
            'needs = "a"',
            "phase → b → needs",
            "expected a list of strings, got a string",
        ),
        (
            'needs = ["a"]',
            "needs = [1]",
            "phase → b → needs[0]",
            "expected a string, got an integer",
        ),
        (
            "chosen = true",
            'chosen = "yes"',
            "decision → DEC-001 → chosen",
            "expected true or false",
        ),
        ('name = "A"', "name = 3", "phase → a → name", "expected a string, got an integer"),
        (
            'name = "A"',
            'name = "A"\nstatus = { local = "done" }',
            "phase → a → status → local",
            "unknown value 'done'",
        ),
        ('name = "A"', 'name = "A"\nneeds_typo = []', "phase → a → needs_typo", "unknown field"),
        (
            'service = "postgres"',
            'service = "redis"',
            "later → LATER-001 → service",
            "unknown service 'redis'",
        ),
        ('id = "DEC-001"', 'id = "D-1"', "decision → D-1 → id", "must start with 'DEC-'"),
    ],
)
def test_bad_types_and_values(old: str, new: str, key: str, message: str) -> None:
    err = error_for(BASE.replace(old, new, 1))
    assert err.key == key
    assert message in err.message


def test_missing_required_field() -> None:
    err = error_for('[[phase]]\nid = "a"\n')
    assert err.key == "phase → a → name"
    assert "required field is missing" in err.message


def test_action_references_are_checked() -> None:
    action = (
        '\n[[action]]\nwhat = "Do"\nphase = "b"\npart = "production"\ngated_by = ["LATER-777"]\n'
    )
    err = error_for(BASE + action)
    assert err.key == "action → Do → gated_by[0]"
    err = error_for(BASE + action.replace('phase = "b"', 'phase = "q"'))
    assert err.key == "action → Do → phase"
    err = error_for(BASE + action.replace('"production"', '"staging"'))
    assert err.key == "action → Do → part"


def test_toml_syntax_error_names_the_file() -> None:
    err = error_for("[[phase]\n")
    assert "not valid TOML" in err.message
    assert err.one_line().startswith("Config error: reg.toml: not valid TOML")


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_registry(missing)
    assert caught.value.file == str(missing)
