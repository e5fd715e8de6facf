"""The error tree: one exit code per kind of failure, drawn in errors.py's docstring; an
interrupt is none of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devenv import errors
from devenv.errors import DevenvError, Handled, Interrupted

ROOT = Path(__file__).resolve().parents[2]


def _kinds() -> list[type[Handled]]:
    return [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, Handled) and c not in (Handled, DevenvError)
    ]


def test_exit_codes_are_distinct_and_one_means_checks_only() -> None:
    codes: dict[int, list[str]] = {}
    for kind in _kinds():
        codes.setdefault(kind.exit_code, []).append(kind.__name__)
    assert sorted(codes.pop(1)) == ["ChecksFailedError", "UnhealthyError"]
    assert codes.pop(3) == ["ConfigError", "MissingSecretError"]  # a kind of config error
    assert all(len(names) == 1 for names in codes.values()), codes
    assert errors.EngineError.exit_code == 11
    assert errors.Interrupted.exit_code == 130


def test_every_kind_is_in_the_docstring_tree_with_its_code() -> None:
    tree = errors.__doc__ or ""
    for kind in _kinds():
        line = next((row for row in tree.splitlines() if f" {kind.__name__} " in row), "")
        assert kind.__name__ in line, kind
        if kind is not errors.MissingSecretError:
            assert f"({kind.exit_code})" in line, line


def test_the_root_is_never_raised() -> None:
    """Every handled failure names its kind (and so its exit code)."""
    bare = re.compile(r"(?<!class )\b(DevenvError|Handled)\(")
    for path in (ROOT / "devenv").rglob("*.py"):
        assert not bare.search(path.read_text(encoding="utf-8")), path


def test_an_interrupt_passes_every_handler_of_failures() -> None:
    """A cycle's or a step's `except DevenvError` (or `except Exception`) never takes a
    Ctrl-C for a failure of its own: the interrupt reaches whoever ends the command."""
    stop = Interrupted("stopped by SIGINT", hint="run `devenv up` again")
    assert not isinstance(stop, (DevenvError, Exception))

    def cycle(handler: type[BaseException]) -> None:
        try:
            raise stop
        except handler:  # the handler a cycle or a step has
            pytest.fail(f"except {handler.__name__} caught the interrupt")

    for handler in (DevenvError, Exception):
        with pytest.raises(Interrupted):
            cycle(handler)
    assert stop.one_line() == "Interrupted: stopped by SIGINT (fix: run `devenv up` again)"
    assert isinstance(stop, Handled)  # what the CLI turns into its line and exit code 130
