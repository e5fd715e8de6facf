"""Keep secrets out of output: mask URLs for display and redact known values from any text.

Redaction works on plain text, before anything escapes or encodes it (the console's JSON, the
dashboard's templates, the JUnit XML all hand over their strings first). As a second net, the
registry also replaces each secret as HTML, XML, JSON and URLs spell it, so a service's own log
line that quotes a password in JSON does not carry it past the mask either.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import SplitResult, quote, unquote, urlsplit

T = TypeVar("T")
MASK = "****"
# The one pattern that says "this name holds a secret": profile keys and backend variables,
# the environment devenv runs in, the pytest plugin's fields. URL query parameters add the
# names only URLs use.
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|KEY|CREDENTIAL|PRIVATE|SALT|DSN", re.IGNORECASE
)
_SECRET_PARAM = re.compile(SECRET_NAME.pattern + r"|pass|signature|auth", re.IGNORECASE)


def secret_name(name: str) -> bool:
    """Whether a variable, setting or field of this name holds a secret."""
    return SECRET_NAME.search(name) is not None


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


_APOSTROPHES = ("'", "&#39;", "&#x27;")
_QUOTES = ('"', "&#34;", "&quot;")


def encodings(fragment: str) -> set[str]:
    """The fragment and how HTML/XML (each common entity style), JSON, Python's repr and URLs
    write it, and with its whitespace collapsed (one-line details do that)."""
    found = {fragment, " ".join(fragment.split()), repr(fragment)[1:-1]}
    base = fragment.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for apostrophe in _APOSTROPHES:
        for quote_mark in _QUOTES:
            found.add(base.replace("'", apostrophe).replace('"', quote_mark))
    found.add(json.dumps(fragment)[1:-1])
    found.add(json.dumps(fragment, ensure_ascii=False)[1:-1])
    found.add(quote(fragment, safe=""))
    return {f for f in found if len(f) >= MIN_REDACTED}


MIN_REDACTED = 4


def fragments_of(secrets: Iterable[str]) -> tuple[str, ...]:
    """Every spelling to replace, longest first (a secret inside a longer one goes with it).

    Fragments shorter than MIN_REDACTED characters are left alone: replacing a one-letter
    password everywhere would garble every word and protect nothing.
    """
    found = {
        encoded
        for secret in secrets
        if secret
        for f in secret_fragments(secret)
        if len(f) >= MIN_REDACTED
        for encoded in encodings(f)
    }
    return tuple(sorted(found, key=lambda f: (-len(f), f)))


_CUTS = ("…", "...")  # where a shortened text ends: what stands before may be half a secret


def _replace(text: str, fragments: Sequence[str]) -> str:
    for fragment in fragments:
        if fragment in text:
            text = text.replace(fragment, MASK)
    if any(cut in text for cut in _CUTS):
        text = _mask_cut_prefixes(text, fragments)
    return text


def _mask_cut_prefixes(text: str, fragments: Sequence[str]) -> str:
    """A detail cut short to fit a line may end in the first characters of a secret: mask
    the longest such prefix (at least MIN_REDACTED characters) right before the cut."""
    for cut in _CUTS:
        start = 0
        while (at := text.find(cut, start)) != -1:
            longest = 0
            for fragment in fragments:
                for size in range(min(len(fragment) - 1, at), longest, -1):
                    if size >= MIN_REDACTED and text.startswith(fragment[:size], at - size):
                        longest = size
                        break
            if longest:
                text = text[: at - longest] + MASK + text[at:]
                at += len(MASK) - longest
            start = at + len(cut)
    return text


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (and of a URL secret's password), as written or
    as HTML, JSON or a URL encodes it, with ``****``."""
    return _replace(text, fragments_of(secrets))


def redact_data(value: T, redact_text: Callable[[str], str]) -> T:
    """`value` with `redact_text` applied to every string inside it (dicts, lists, tuples,
    frozen dataclasses), before anything serialises it."""
    return cast(T, _redact_any(value, redact_text))


def _redact_any(value: Any, redact_text: Callable[[str], str]) -> Any:
    if type(value) is str:
        return redact_text(value)
    if isinstance(value, dict):
        return {_redact_any(k, redact_text): _redact_any(v, redact_text) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_any(v, redact_text) for v in value]
    if type(value) is tuple:
        return tuple(_redact_any(v, redact_text) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _redact_any(getattr(value, f.name), redact_text)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


class Secrets:
    """The secret values one run knows: the single registry every output is redacted with.

    Use cases add what they learn (generated credentials, the profile's secrets, the database
    URL); the console redacts everything it prints with it. `enabled=False` (--show-secrets)
    prints values as they are.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        # replaced under the lock, never mutated: redacting reads them without one while a use
        # case in another thread learns a secret (the dashboard does both all the time)
        self._values: frozenset[str] = frozenset()
        self._fragments: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        with self._lock:
            new = self._values.union(v for v in values if v)
            if new != self._values:
                self._values = new
                self._fragments = fragments_of(new)

    def add_environ(self, environ: Mapping[str, str]) -> None:
        """Values of variables whose name says secret, and URLs that carry a password."""
        for key, value in environ.items():
            if value and len(value) >= 6 and secret_name(key):
                self.add(value)
            if value and key.endswith("_URL") and has_userinfo(value):
                self.add(value)

    def redact(self, text: str) -> str:
        fragments = self._fragments
        return _replace(text, fragments) if self.enabled and fragments else text

    def redact_data(self, value: T) -> T:
        """`value` with every string inside it redacted (see redact_data)."""
        return redact_data(value, self.redact) if self.enabled and self._fragments else value
