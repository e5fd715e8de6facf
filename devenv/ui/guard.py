"""Who may talk to the dashboard: the pure request guard.

Anyone on the machine can open a connection to 127.0.0.1 (other users, containers on the host
network, the backend itself), and any web page can make a browser send requests there. So:
- every request must name this server in its Host header (`127.0.0.1:PORT` or `localhost:PORT`),
  which defeats DNS rebinding (a foreign name resolving to 127.0.0.1 keeps its own Host): 403;
- every request but the static assets and the sign-in link must carry this run's session cookie,
  which only the browser that opened the link `devenv ui` printed holds (HttpOnly: no script
  reads it; SameSite=Strict: no other site's request carries it): 401 without it;
- the link carries a one-time token, exchanged for that cookie on first use;
- a state-changing request (anything but GET/HEAD) must also carry this run's action token in a
  header, which only the signed-in page knows, and an Origin (when the browser sends one) that
  is this page's own: 403.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

TOKEN_HEADER = "x-devenv-token"  # noqa: S105 - a header name, not a credential
LOGIN_PATH = "/login"
LOGIN_PARAM = "token"  # the query parameter of the sign-in link
PUBLIC_PREFIX = "/static/"  # the stylesheet and the script: no data, no secret
SAFE_METHODS = frozenset({"GET", "HEAD"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Keys:
    """This run's three secrets (never written anywhere but the terminal and the browser)."""

    login: str = field(default_factory=new_token)  # one-time, in the printed URL
    session: str = field(default_factory=new_token)  # the cookie's value
    action: str = field(default_factory=new_token)  # the header actions carry

    def __repr__(self) -> str:
        return "Keys(****)"


def cookie_name(port: int) -> str:
    """One cookie per dashboard port: browsers share 127.0.0.1's cookies across ports, so two
    dashboards (two projects, two users) must not overwrite each other's."""
    return f"devenv_ui_{port}"


def login_url(port: int, keys: Keys) -> str:
    return f"http://127.0.0.1:{port}{LOGIN_PATH}?{LOGIN_PARAM}={keys.login}"


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: not signed in; 403: not allowed at all
    why: str


def refusal(
    method: str,
    path: str,
    *,
    host: str | None,
    origin: str | None,
    token: str | None,
    cookie: str | None,
    port: int,
    keys: Keys,
) -> Refusal | None:
    """Why this request must be refused, or None when it may pass."""
    if host is None or host.lower() not in allowed_hosts(port):
        return Refusal(
            403, f"Host {host!r} is not this dashboard (127.0.0.1:{port} or localhost:{port})"
        )
    if path == LOGIN_PATH or path.startswith(PUBLIC_PREFIX):
        return None  # the sign-in route checks its own token; assets are public
    if not same(cookie, keys.session):
        return Refusal(401, "not signed in: open the link `devenv ui` printed")
    if method.upper() in SAFE_METHODS:
        return None
    return _action_refusal(host, origin, token, keys)


def _action_refusal(host: str, origin: str | None, token: str | None, keys: Keys) -> Refusal | None:
    if origin is not None and origin.lower() != f"http://{host.lower()}":
        return Refusal(403, f"Origin {origin!r} is not this dashboard's")
    if not same(token, keys.action):
        return Refusal(403, f"missing or wrong {TOKEN_HEADER} header")
    return None
