"""A bug's last words: its traceback in a log file of its own, one line on the terminal."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from devenv import __version__
from devenv.console import Console
from devenv.errors import INTERNAL_ERROR

KEEP = 20  # crash logs kept; older ones are removed when a new one is written


def crash_dir() -> Path:
    from devenv.state import cache_dir

    return cache_dir() / "crashes"


def write_log(text: str) -> Path:
    """The text in a new file (0600, in a 0700 directory); the oldest beyond KEEP go."""
    directory = crash_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = directory / f"devenv-{stamp}-{os.getpid()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    logs = sorted(directory.glob("devenv-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def report(console: Console, exc: BaseException, argv: list[str]) -> int:
    """Say that devenv failed unexpectedly, where the (redacted) traceback is; the exit code."""
    details = "".join(traceback.format_exception(exc))
    text = console.secrets.redact(
        f"devenv {__version__} (Python {sys.version.split()[0]})\n"
        f"argv: {' '.join(['devenv', *argv])}\n\n{details}"
    )
    said = " ".join(str(exc).split())[:200]
    try:
        path = write_log(text)
        where = f"the traceback is in {path}"
    except OSError as failed:
        where = f"no log file ({failed.strerror}); the traceback follows"
        console.verbose = True
    console.err.write(
        console.secrets.redact(
            f"Internal error: {type(exc).__name__}: {said} — a bug in devenv; {where} "
            "(fix: report it with that file)"
        )
        + "\n"
    )
    if console.verbose:
        console.err.write(text)
    console.err.flush()
    return INTERNAL_ERROR
