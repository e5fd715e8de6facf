"""The console: every way out (lines, JSON, tables, progress, the error line, files) is
redacted with the one registry the use cases fill."""

from __future__ import annotations

import io
from pathlib import Path

from devenv.config.secrets import Secrets
from devenv.console import Console, grid
from devenv.errors import ReadinessError

SECRET = "hunter2-Secret"


def _console(*, enabled: bool = True) -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    secrets = Secrets(enabled=enabled)
    secrets.add(SECRET)
    return Console(secrets=secrets, out=out, err=err), out, err


def test_every_output_path_is_redacted(tmp_path: Path) -> None:
    console, out, err = _console()
    console.line(f"password {SECRET}")
    console.json({"url": f"postgres://u:{SECRET}@h/db"})
    console.table([("KEY", "VALUE"), ("pw", SECRET)])
    console.progress(f"using {SECRET}")
    console.error(ReadinessError(f"bad {SECRET}", details=f"  last log lines:\n    {SECRET}"))
    console.write_file(tmp_path / "report.md", f"# {SECRET}")
    text = out.getvalue() + err.getvalue() + (tmp_path / "report.md").read_text()
    assert SECRET not in text
    assert text.count("****") == 7
    assert err.getvalue().splitlines()[0].startswith("[")  # a timestamped progress line


def test_show_secrets_turns_the_registry_off() -> None:
    console, out, _ = _console(enabled=False)
    console.line(SECRET)
    assert out.getvalue() == SECRET + "\n"


def test_secrets_from_the_environment_by_name_and_url() -> None:
    secrets = Secrets()
    secrets.add_environ(
        {"API_TOKEN": "tok-123456", "PATH": "/usr/bin", "DB_URL": "postgres://u:pw12@h/d"}
    )
    assert secrets.redact("tok-123456 /usr/bin pw12") == "**** /usr/bin ****"


def test_one_grid_for_every_table() -> None:
    rows = [("A", "B", "C"), ("long value", "x", "y")]
    assert grid(rows) == "A           B  C\nlong value  x  y"
    wrapped = grid([("k", "a b c d e f")], width=24, indent=2)
    assert wrapped.splitlines()[0] == "  k  a b c d e f"


def test_json_is_redacted_before_it_escapes_quotes_and_backslashes() -> None:
    odd = "Zq8&Secret'pw\"<x>\\y"
    out = io.StringIO()
    secrets = Secrets()
    secrets.add(odd)
    Console(secrets=secrets, out=out).json({"detail": f"password {odd}", "list": [odd]})
    text = out.getvalue()
    assert "Zq8" not in text
    assert text.count("****") == 2
