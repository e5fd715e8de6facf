"""The dashboard's request guard: Host for everything, token and Origin for actions."""

from __future__ import annotations

import pytest

from devenv.ui.guard import allowed_hosts, new_token, refusal

TOKEN = "s3cr3t-token-of-this-run"
PORT = 43210


def check(
    method: str = "POST",
    *,
    host: str | None = f"127.0.0.1:{PORT}",
    origin: str | None = None,
    token: str | None = TOKEN,
) -> str | None:
    return refusal(method, host=host, origin=origin, token=token, port=PORT, expected_token=TOKEN)


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LOCALHOST:{PORT}"])
def test_our_own_host_with_the_token_passes(host: str) -> None:
    assert check(host=host) is None
    assert check(host=host, origin=f"http://{host}") is None


@pytest.mark.parametrize(
    "host",
    [
        None,
        "evil.example:43210",  # DNS rebinding: a foreign name that resolves to 127.0.0.1
        "127.0.0.1",  # no port: not what a browser sends for this page
        "127.0.0.1:1",
        f"127.0.0.1.nip.io:{PORT}",
        f"[::1]:{PORT}",
        "",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_any_other_host_is_refused_for_every_method(host: str | None, method: str) -> None:
    why = check(method, host=host)
    assert why is not None
    assert "Host" in why


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_an_action_without_this_runs_token_is_refused(token: str | None) -> None:
    why = check(token=token)
    assert why is not None
    assert "x-devenv-token" in why


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        f"https://127.0.0.1:{PORT}",
        f"http://localhost:{PORT}",  # the page was loaded from 127.0.0.1, not localhost
        "http://127.0.0.1:1",
    ],
)
def test_a_foreign_origin_is_refused_even_with_the_token(origin: str) -> None:
    why = check(origin=origin)
    assert why is not None
    assert "Origin" in why


def test_reads_need_only_the_host() -> None:
    assert check("GET", token=None) is None
    assert check("HEAD", token=None, origin="http://evil.example") is None


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_held_to_the_action_rules(method: str) -> None:
    assert check(method, token=None) is not None


def test_tokens_are_long_and_fresh() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 40 for t in tokens)


def test_allowed_hosts_name_the_port() -> None:
    assert allowed_hosts(8) == {"127.0.0.1:8", "localhost:8"}
