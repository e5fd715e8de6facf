"""The dashboard's request guard: Host for everything, the session cookie for everything but
the sign-in link and the assets, token and Origin for actions."""

from __future__ import annotations

import pytest

from devenv.ui.guard import Keys, allowed_hosts, cookie_name, login_url, new_token, refusal

KEYS = Keys(login="one-time-login-token", session="session-of-this-run", action="s3cr3t-token")
TOKEN = KEYS.action
PORT = 43210


def refused(
    method: str = "POST",
    path: str = "/actions/checks",
    *,
    host: str | None = f"127.0.0.1:{PORT}",
    origin: str | None = None,
    token: str | None = TOKEN,
    cookie: str | None = KEYS.session,
) -> tuple[int, str] | None:
    found = refusal(
        method, path, host=host, origin=origin, token=token, cookie=cookie, port=PORT, keys=KEYS
    )
    return None if found is None else (found.status, found.why)


def check(method: str = "POST", **kwargs: str | None) -> str | None:
    found = refused(method, **kwargs)  # type: ignore[arg-type]
    return None if found is None else found[1]


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


def test_reads_need_the_host_and_the_session_but_no_token() -> None:
    assert check("GET", token=None) is None
    assert check("HEAD", token=None, origin="http://evil.example") is None


@pytest.mark.parametrize("path", ["/", "/events", "/logs/postgres", "/actions/up", "/anything"])
@pytest.mark.parametrize("cookie", [None, "", "guessed", KEYS.login, KEYS.action])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_this_runs_session_cookie_everything_is_401(
    path: str, cookie: str | None, method: str
) -> None:
    found = refused(method, path, cookie=cookie)
    assert found is not None
    assert found[0] == 401
    assert "devenv ui" in found[1]


@pytest.mark.parametrize("path", ["/login", "/static/app.js", "/static/app.css"])
def test_the_sign_in_link_and_the_assets_need_no_session(path: str) -> None:
    assert refused("GET", path, cookie=None) is None
    foreign = refused("GET", path, cookie=None, host=f"evil.example:{PORT}")
    assert foreign is not None
    assert foreign[0] == 403


def test_a_wrong_host_is_403_before_anything_else() -> None:
    found = refused("GET", "/", host="evil.example", cookie=None)
    assert found is not None
    assert found[0] == 403


def test_the_link_and_the_cookie_name_the_port() -> None:
    assert login_url(PORT, KEYS) == f"http://127.0.0.1:{PORT}/login?token={KEYS.login}"
    assert cookie_name(PORT) == f"devenv_ui_{PORT}"
    assert KEYS.session not in repr(KEYS)
    fresh = Keys()
    assert len({fresh.login, fresh.session, fresh.action}) == 3


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_held_to_the_action_rules(method: str) -> None:
    assert check(method, token=None) is not None


def test_tokens_are_long_and_fresh() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 40 for t in tokens)


def test_allowed_hosts_name_the_port() -> None:
    assert allowed_hosts(8) == {"127.0.0.1:8", "localhost:8"}
