"""Compose-style ${VAR} interpolation from an injected mapping, and a strict .env reader."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from devenv.errors import ConfigError, MissingSecretError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def one_line(text: str, limit: int = 80) -> str:
    """Quote user text for an error message: one line, bounded length."""
    shown = repr(text)
    if len(shown) > limit:
        shown = shown[: limit - 4] + "…" + shown[-1]
    return shown


def interpolate(
    text: str,
    variables: Mapping[str, str],
    *,
    file: str | None = None,
    key: str | None = None,
    strict: bool = False,
    echo: bool = True,
) -> str:
    """Substitute ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?msg}, ${VAR?msg}, $VAR and $$.

    With ``strict``, a plain ${VAR} or $VAR that is unset is an error instead of "" (compose's
    behaviour); profiles use it so that a missing secret never becomes an empty password.
    Without ``echo``, syntax errors do not quote the text (it may hold a password).
    """
    return _Interpolator(variables, file, key, strict, echo).run(text)


class _Interpolator:
    def __init__(
        self,
        variables: Mapping[str, str],
        file: str | None,
        key: str | None,
        strict: bool,
        echo: bool,
    ) -> None:
        self.variables = variables
        self.file = file
        self.key = key
        self.strict = strict
        self.echo = echo

    def quote(self, text: str) -> str:
        return one_line(text) if self.echo else "the value"

    def fail(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, key=self.key, hint="write $$ for a literal $")

    def missing(self, name: str, detail: str = "") -> MissingSecretError:
        message = f"variable {name} is not set"
        if detail:
            message += f": {one_line(detail)[1:-1]}"
        return MissingSecretError(
            message, file=self.file, key=self.key, hint=f"export {name}=... or add it to .env"
        )

    def run(self, text: str) -> str:
        out: list[str] = []
        i, end = 0, len(text)
        while i < end:
            dollar = text.find("$", i)
            if dollar < 0:
                out.append(text[i:])
                break
            out.append(text[i:dollar])
            nxt = text[dollar + 1 : dollar + 2]
            if nxt == "$":
                out.append("$")
                i = dollar + 2
            elif nxt == "{":
                close = self._closing_brace(text, dollar + 2)
                out.append(self._braced(text[dollar + 2 : close]))
                i = close + 1
            else:
                match = NAME.match(text, dollar + 1)
                if match is None:
                    raise self.fail(f"invalid `$` in {self.quote(text)}")
                out.append(self._lookup(match.group()))
                i = match.end()
        return "".join(out)

    def _closing_brace(self, text: str, start: int) -> int:
        depth, i = 1, start
        while i < len(text):
            if text.startswith("$$", i):
                i += 2
                continue
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise self.fail(f"unterminated `${{` in {self.quote(text)}")

    def _lookup(self, name: str) -> str:
        value = self.variables.get(name)
        if value is None:
            if self.strict:
                raise self.missing(name)
            return ""
        return value

    def _braced(self, body: str) -> str:
        match = NAME.match(body)
        if match is None:
            raise self.fail(f"invalid variable name in {self.quote('${' + body + '}')}")
        name, rest = match.group(), body[match.end() :]
        if not rest:
            return self._lookup(name)
        op = next((o for o in _OPERATORS if rest.startswith(o)), None)
        if op is None:
            raise self.fail(f"bad substitution {self.quote('${' + body + '}')}")
        arg = rest[len(op) :]
        value = self.variables.get(name)
        unset_or_empty = not value if op.startswith(":") else value is None
        if op.endswith("-"):
            return self.run(arg) if unset_or_empty else str(value)
        if op.endswith("?"):
            if unset_or_empty:
                raise self.missing(name, arg)
            return str(value)
        # ${VAR:+alt} / ${VAR+alt}: alt when set, else empty
        return "" if unset_or_empty else self.run(arg)


def load_dotenv(path: Path, *, display: str | None = None) -> dict[str, str]:
    """Read KEY=VALUE lines (comments, quotes, ``export`` prefix); values are not interpolated."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=shown) from exc
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not NAME.fullmatch(name):
            raise ConfigError(
                f"line {number}: expected KEY=VALUE, got {one_line(raw)}",
                file=shown,
                hint="a key is letters, digits and _; quote values that contain spaces",
            )
        result[name] = _dotenv_value(value.strip(), shown, number)
    return result


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _dotenv_value(value: str, file: str, number: int) -> str:
    if not value:
        return ""
    quote = value[0]
    if quote not in "\"'":
        comment = re.search(r"\s#", value)
        return (value[: comment.start()] if comment else value).strip()
    chars: list[str] = []
    i = 1
    while i < len(value):
        char = value[i]
        if char == quote:
            tail = value[i + 1 :].strip()
            if tail and not tail.startswith("#"):
                raise ConfigError(
                    f"line {number}: unexpected text after the closing quote: {one_line(tail)}",
                    file=file,
                )
            return "".join(chars)
        if quote == '"' and char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            chars.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        chars.append(char)
        i += 1
    raise ConfigError(
        f"line {number}: unterminated {quote} quote",
        file=file,
        hint="values spanning several lines are not supported",
    )
