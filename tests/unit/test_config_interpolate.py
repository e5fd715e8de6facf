"""Compose-style interpolation and the .env reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devenv.config.interpolate import interpolate, load_dotenv
from devenv.errors import ConfigError, MissingSecretError

VARS = {"SET": "value", "EMPTY": "", "PORT": "5433"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        ("${SET}", "value"),
        ("$SET", "value"),
        ("$SET/x", "value/x"),
        ("a${SET}b", "avalueb"),
        ("${UNSET}", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${SET:-dflt}", "value"),
        ("${SET:?needed}", "value"),
        ("${EMPTY?needed}", ""),
        ("${SET:+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("price $$5", "price $5"),
        ("127.0.0.1:${PORT:-5432}:5432", "127.0.0.1:5433:5432"),
        ("127.0.0.1:${NOPE:-5432}:5432", "127.0.0.1:5432:5432"),
        ("${UNSET:-a:b}", "a:b"),
    ],
)
def test_interpolation_table(template: str, expected: str) -> None:
    assert interpolate(template, VARS) == expected


@pytest.mark.parametrize("template", ["${UNSET:?is needed}", "${EMPTY:?is needed}", "${UNSET?x}"])
def test_required_variable_names_file_key_and_variable(template: str) -> None:
    with pytest.raises(MissingSecretError) as caught:
        interpolate(template, VARS, file="compose/compose.yaml", key="services → db → image")
    line = caught.value.one_line()
    assert "compose/compose.yaml" in line
    assert "services → db → image" in line
    assert ("UNSET" in line) or ("EMPTY" in line)
    assert "\n" not in line


def test_strict_mode_refuses_unset_plain_reference() -> None:
    with pytest.raises(MissingSecretError, match="SECRET_URL"):
        interpolate("${SECRET_URL}", {}, strict=True)
    with pytest.raises(MissingSecretError, match="BARE"):
        interpolate("$BARE", {}, strict=True)
    assert interpolate("${SECRET_URL:-x}", {}, strict=True) == "x"


@pytest.mark.parametrize("template", ["${", "${SET", "${}", "${1X}", "${SET!x}", "$", "a $ b"])
def test_malformed_templates_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError) as caught:
        interpolate(template, VARS, file="f.yaml", key="k")
    assert "\n" not in caught.value.one_line()
    assert not isinstance(caught.value, MissingSecretError)


def test_variables_come_only_from_the_injected_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVENV_TEST_ONLY_IN_OS", "leaked")
    assert interpolate("${DEVENV_TEST_ONLY_IN_OS:-safe}", {}) == "safe"


@given(st.text(alphabet="${}:-?+$ABab_01\n ", max_size=40))
@settings(max_examples=200, deadline=None)
def test_interpolation_only_raises_config_errors(template: str) -> None:
    error: ConfigError | None = None
    try:
        result = interpolate(template, {"A": "1", "b": ""}, strict=False)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert "\n" not in error.one_line()
    else:
        assert result == template or "$" in template


# --- .env -----------------------------------------------------------------------------------


def test_dotenv_reads_comments_quotes_and_export(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED = padded  \n"
        'DOUBLE="two words # not a comment"\n'
        "SINGLE='${NOT_EXPANDED}'\n"
        'ESCAPED="line\\nbreak \\"q\\""\n'
        "INLINE=abc # trailing comment\n"
        "EMPTY=\n"
        "URL=postgres://u:p@h:5432/db?sslmode=require\n",
        encoding="utf-8",
    )
    assert load_dotenv(env) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded",
        "DOUBLE": "two words # not a comment",
        "SINGLE": "${NOT_EXPANDED}",
        "ESCAPED": 'line\nbreak "q"',
        "INLINE": "abc",
        "EMPTY": "",
        "URL": "postgres://u:p@h:5432/db?sslmode=require",
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("OK=1\nnot a pair\n", 2),
        ("OK=1\n\n1BAD=x\n", 3),
        ('Q="unterminated\n', 1),
        ("A=1\nB='x' trailing\n", 2),
        ("=novalue\n", 1),
    ],
)
def test_dotenv_malformed_line_is_reported_with_its_number(
    tmp_path: Path, text: str, line: int
) -> None:
    env = tmp_path / ".env"
    env.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_dotenv(env, display=".env")
    message = caught.value.one_line()
    assert f"line {line}:" in message
    assert message.startswith("Config error: .env: ")
    assert "\n" not in message
