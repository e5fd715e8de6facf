"""The console: everything devenv prints (lines, tables, JSON, progress, the error line),
redacted with the run's one secret registry."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from devenv import __version__
from devenv.config.secrets import Secrets
from devenv.errors import Handled, ReadinessError


def grid(rows: Sequence[Sequence[str]], *, width: int | None = None, indent: int = 0) -> str:
    """Left-aligned columns two spaces apart; with `width`, the last column wraps to fit."""
    if not rows:
        return " " * indent + "(none)"
    columns = len(rows[0])
    widths = [max(len(row[i]) for row in rows) for i in range(columns - 1)]
    lines = []
    for row in rows:
        head = " " * indent + "".join(
            f"{cell:<{w}}  " for cell, w in zip(row, widths, strict=False)
        )
        if width is None:
            lines.append((head + row[-1]).rstrip())
            continue
        room = max(width - len(head), 20)
        wrapped = textwrap.wrap(row[-1], room, break_on_hyphens=False) or [""]
        lines.append((head + wrapped[0]).rstrip())
        lines.extend(" " * len(head) + more for more in wrapped[1:])
    return "\n".join(lines)


def versioned(data: Any) -> Any:
    """A JSON document (an object) with the devenv version that wrote it, first."""
    if isinstance(data, dict) and "devenv_version" not in data:
        return {"devenv_version": __version__, **data}
    return data


class Console:
    """Where output goes. Every text passes through `secrets.redact` on its way out; structured
    output (JSON) is redacted string by string before it is encoded.

    `quiet` drops the progress lines; `verbose` adds the debug lines and, for an error, its
    causes."""

    def __init__(
        self,
        *,
        secrets: Secrets | None = None,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.secrets = secrets or Secrets()
        self._out = out
        self._err = err
        self.quiet = quiet
        self.verbose = verbose
        self._started = time.monotonic()
        self._lock = threading.Lock()  # progress lines come from several threads

    @property
    def out(self) -> IO[str]:
        return self._out or sys.stdout

    @property
    def err(self) -> IO[str]:
        return self._err or sys.stderr

    def _write(self, stream: IO[str], text: str, *, flush: bool = False) -> None:
        with self._lock:
            stream.write(self.secrets.redact(text) + "\n")
            if flush:
                stream.flush()

    def line(self, text: str = "", *, flush: bool = False) -> None:
        self._write(self.out, text, flush=flush)

    def json(self, data: Any) -> None:
        """A JSON document on stdout; an object carries `devenv_version`."""
        # redacted as plain strings first: JSON escapes a secret's quotes and backslashes
        plain = versioned(self.secrets.redact_data(data))
        self._write(self.out, json.dumps(plain, indent=2, sort_keys=False, default=str))

    def table(self, rows: Sequence[Sequence[str]], *, indent: int = 0) -> None:
        self._write(self.out, grid(rows, indent=indent))

    def progress(self, message: str) -> None:
        """A timestamped progress line on stderr (seconds since the command started)."""
        if self.quiet:
            return
        elapsed = time.monotonic() - self._started
        self._write(self.err, f"[{elapsed:5.1f}s] {message}", flush=True)

    def debug(self, message: str) -> None:
        """A line for `-v` only: where things came from."""
        if self.verbose:
            self._write(self.err, f"[debug] {message}", flush=True)

    def write_file(self, path: Path, text: str) -> None:
        path.write_text(self.secrets.redact(text).rstrip("\n") + "\n", encoding="utf-8")

    def error(self, exc: Handled) -> None:
        """The one line a handled error ends in (a readiness error adds its details; with
        `verbose`, the exceptions that caused it follow, one line each)."""
        self._write(self.err, exc.one_line())
        if isinstance(exc, ReadinessError) and exc.details:
            self._write(self.err, exc.details)
        cause = exc.__cause__ or exc.__context__
        for _ in range(5 if self.verbose else 0):
            if cause is None:
                break
            said = " ".join(str(cause).split())
            self._write(self.err, f"  caused by {type(cause).__name__}: {said}")
            cause = cause.__cause__ or cause.__context__
