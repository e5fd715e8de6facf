"""Keep secrets out of output: mask URLs for display and redact known values from any text."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import SplitResult, unquote, urlsplit

MASK = "****"
_SECRET_PARAM = re.compile(r"pass|secret|token|key|signature|credential|auth", re.IGNORECASE)


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return parts


def has_userinfo(url: str) -> bool:
    """Whether the URL carries a user or password (which makes the whole URL a secret)."""
    parts = _split(url)
    return parts is not None and "@" in parts.netloc


def mask_url(url: str) -> str:
    """``postgres://app:pw@db:5432/app?sslmode=require`` → ``postgres://app:****@db:5432/app?...``.

    Scheme, user, host, port, path and harmless query parameters stay readable; the password
    and query values that look like credentials become ``****``. Anything that does not parse
    as a URL is masked whole.
    """
    parts = _split(url)
    if parts is None:
        return MASK
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{user}@{hostport}"
    else:
        netloc = hostport
    query = "&".join(_mask_param(pair) for pair in parts.query.split("&")) if parts.query else ""
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


def _mask_param(pair: str) -> str:
    name, eq, _ = pair.partition("=")
    return f"{name}={MASK}" if eq and _SECRET_PARAM.search(name) else pair


def secret_fragments(secret: str) -> list[str]:
    """The secret itself and, for a URL, its password as written and percent-decoded."""
    fragments = [secret]
    parts = _split(secret)
    if parts is not None and parts.password:
        fragments += [parts.password, unquote(parts.password)]
    return [f for f in fragments if f]


MIN_REDACTED = 4


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (and of a URL secret's password) with ``****``.

    Fragments shorter than MIN_REDACTED characters are left alone: replacing a one-letter
    password everywhere would garble every word and protect nothing.
    """
    fragments = {
        f
        for secret in secrets
        if secret
        for f in secret_fragments(secret)
        if len(f) >= MIN_REDACTED
    }
    for fragment in sorted(fragments, key=len, reverse=True):
        text = text.replace(fragment, MASK)
    return text


_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN", re.IGNORECASE)


class Secrets:
    """The secret values one run knows: the single registry every output is redacted with.

    Use cases add what they learn (generated credentials, the profile's secrets, the database
    URL); the console redacts everything it prints with it. `enabled=False` (--show-secrets)
    prints values as they are.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        # replaced under the lock, never mutated: redacting reads it without one while a use
        # case in another thread learns a secret (the dashboard does both all the time)
        self._values: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        with self._lock:
            self._values = self._values.union(v for v in values if v)

    def add_environ(self, environ: Mapping[str, str]) -> None:
        """Values of variables whose name says secret, and URLs that carry a password."""
        for key, value in environ.items():
            if value and len(value) >= 6 and _SECRET_NAME.search(key):
                self.add(value)
            if value and key.endswith("_URL") and has_userinfo(value):
                self.add(value)

    def redact(self, text: str) -> str:
        return redact(text, self._values) if self.enabled and self._values else text
