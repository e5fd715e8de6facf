"""The real CLI run in-process: its exit code and what it printed."""

from __future__ import annotations

import signal

import pytest

from devenv.cli.main import run


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`devenv ARGS` through the error boundary: (exit code, stdout, stderr). The SIGINT
    handler the CLI installs is put back afterwards."""
    monkeypatch.setattr("sys.argv", ["devenv", *args])
    previous = signal.getsignal(signal.SIGINT)
    code: int | str | None = 0
    try:
        run()
    except SystemExit as exited:
        code = exited.code
    finally:
        signal.signal(signal.SIGINT, previous)
    out = capsys.readouterr()
    return (code if isinstance(code, int) else 1), out.out, out.err
