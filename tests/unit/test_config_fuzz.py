"""Mutated compose and profile files fail with a handled, one-line error, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.config.compose import load_project
from devenv.config.profiles import resolve_profile
from devenv.errors import ConfigError, DevenvError, RefusedError

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "compose" / "compose.yaml").read_text(encoding="utf-8")
PROFILE_TEXTS = [
    (REPO / "profiles" / f"{name}.toml").read_text(encoding="utf-8")
    for name in ("local", "hybrid", "staging")
]
SIGNIFICANT = [*":-[]{}\"'#&*!|>%@`,=.$\n\t ", "${", "${X", "}}", "\\", "\u00e9", "\x00"]
WRONG_VALUES = [
    "[]", "{}", "null", "true", "false", "42", "-1", "0", "99999", "1e999", "0x10", "'${X'",
    "[1, {a: b}]", "2020-02-30", "~", '"${UNSET:?boom}"', "!!binary aGk=", "*nope", "[[[[1]]]]",
    '"127.0.0.1:${P:-abc}:1"', '"0.0.0.0:1:1"', '"./here:/there"', "1979-05-27T07:32:00Z",
    '"a"', '{kind = "x"}', "inf", "nan",
]  # fmt: skip
RANDOM_KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.", min_size=1, max_size=12)
VALUE_LINE = re.compile(r"^(\s*[\w.-]+\s*[:=]\s*)(\S.*)$", re.MULTILINE)


@st.composite
def mutated(draw: st.DrawFn, text: str, key_line: str) -> str:
    """Apply a few character- and structure-level mutations to valid config text."""
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["delete", "duplicate", "replace", "wrong_type", "key"]))
        at = draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        size = draw(st.integers(min_value=1, max_value=12))
        if kind == "delete":
            text = text[:at] + text[at + size :]
        elif kind == "duplicate":
            text = text[:at] + text[at : at + size] + text[at:]
        elif kind == "replace":
            text = text[:at] + draw(st.sampled_from(SIGNIFICANT)) + text[at + 1 :]
        elif kind == "wrong_type":
            lines = list(VALUE_LINE.finditer(text))
            if lines:
                match = draw(st.sampled_from(lines))
                value = draw(st.sampled_from(WRONG_VALUES))
                text = text[: match.start(2)] + value + text[match.end(2) :]
        else:
            starts = [0] + [m.end() for m in re.finditer("\n", text)]
            line_start = draw(st.sampled_from(starts))
            indent = draw(st.sampled_from(["", "  ", "    ", "      "]))
            new = key_line.format(indent=indent, key=draw(RANDOM_KEYS))
            text = text[:line_start] + new + text[line_start:]
    return text


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_handled(exc: DevenvError) -> None:
    assert isinstance(exc, ConfigError | RefusedError)
    assert "\n" not in exc.one_line()


@given(text=mutated(COMPOSE_TEXT, "{indent}{key}: 1\n"))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_compose_raises_only_config_errors(scratch: Path, text: str) -> None:
    compose = scratch / "compose" / "compose.yaml"
    compose.parent.mkdir(exist_ok=True)
    compose.write_text(text, encoding="utf-8")
    error: DevenvError | None = None
    try:
        project = load_project(scratch, project_name="fuzz", variables={"POSTGRES_PORT": "5433"})
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert_handled(error)
    else:
        assert project.services


@given(
    text=st.sampled_from(PROFILE_TEXTS).flatmap(lambda t: mutated(t, '{key} = "x"\n')),
    protected=st.booleans(),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_profile_raises_only_config_or_refused(
    scratch: Path, text: str, protected: bool
) -> None:
    profile = scratch / "profiles" / "fuzz.toml"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(text, encoding="utf-8")
    environ = {
        "DEVENV_HYBRID_DATABASE_URL": "postgres://u:p@h:5432/db",
        "STAGING_DATABASE_URL": "postgres://u:p@h:5432/db",
        "R2_ACCOUNT_ID": "a",
        "R2_ACCESS_KEY_ID": "k",
        "R2_SECRET_ACCESS_KEY": "s",
    }
    if protected:
        environ["DEVENV_AUTH_DEV_BYPASS"] = "true"
    error: DevenvError | None = None
    try:
        resolved = resolve_profile(scratch, "fuzz", environ=environ)
    except (ConfigError, RefusedError) as exc:
        error = exc
    if error is not None:
        assert_handled(error)
    else:
        assert set(resolved.bindings) == {"postgres", "objectstore", "backend"}
