"""`devenv ui` before it serves: bad input is one line and an exit code, nothing listens."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.unit.clirun import run_cli as cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVENV_ROOT", str(REPO))
    monkeypatch.setenv("DEVENV_PROJECT", "t-ui-cli")


def test_a_taken_port_is_a_port_conflict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, out, err = cli(monkeypatch, capsys, "ui", "--no-browser", "--port", str(port))
    assert code == 6
    assert out == ""
    assert err.startswith(f"Port conflict: cannot listen on 127.0.0.1:{port}")
    assert "leave it out for a free one" in err
    assert "Traceback" not in err


def test_a_bad_profile_fails_before_anything_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(monkeypatch, capsys, "ui", "--no-browser", "--profile", "no-such")
    assert code == 3
    assert out == ""
    assert "no-such" in err
