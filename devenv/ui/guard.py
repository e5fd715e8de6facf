"""Who may talk to the dashboard: the pure request guard against other web pages.

A page on another site can make the browser send requests to 127.0.0.1. Three rules stop it:
- every request must name this server in its Host header (`127.0.0.1:PORT` or `localhost:PORT`),
  which defeats DNS rebinding (a foreign name resolving to 127.0.0.1 keeps its own Host);
- a state-changing request (anything but GET/HEAD) must carry this run's random token in a
  header, which only a page served by this process knows (a cookie would be sent by any site);
- its Origin, when the browser sends one, must be this page's own origin.
"""

from __future__ import annotations

import hmac
import secrets

TOKEN_HEADER = "x-devenv-token"  # noqa: S105 - a header name, not a credential
SAFE_METHODS = frozenset({"GET", "HEAD"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def refusal(
    method: str,
    *,
    host: str | None,
    origin: str | None,
    token: str | None,
    port: int,
    expected_token: str,
) -> str | None:
    """Why this request must get 403, or None when it may pass."""
    if host is None or host.lower() not in allowed_hosts(port):
        return f"Host {host!r} is not this dashboard (127.0.0.1:{port} or localhost:{port})"
    if method.upper() in SAFE_METHODS:
        return None
    if origin is not None and origin.lower() != f"http://{host.lower()}":
        return f"Origin {origin!r} is not this dashboard's"
    if not token or not hmac.compare_digest(token.encode(), expected_token.encode()):
        return f"missing or wrong {TOKEN_HEADER} header"
    return None
