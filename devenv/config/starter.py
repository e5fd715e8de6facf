"""`devenv init`: a starter compose/ and profiles/ for a team's repository, from the packaged
defaults. Nothing is overwritten: when one of the files exists, nothing is written at all."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from devenv.config import defaults
from devenv.errors import RefusedError

# what a repository that runs devenv keeps out of version control: generated credentials
# (.devenv/<project>/state.json), personal profile overrides, the .env of ${VAR} values
IGNORED = (".devenv/", "profiles/*.local.toml", ".env")
_CONTEXT_LINE = re.compile(r"^# context = .*$", re.M)


@dataclass(frozen=True)
class Started:
    written: tuple[Path, ...]
    ignored: tuple[str, ...]  # lines added to .gitignore
    backend: Path | None  # the backend checkout the local profile builds, when one was given


def starter_files(root: Path, backend: Path | None) -> dict[Path, str]:
    """The files `init` writes into `root`, and their text."""
    packaged = defaults.packaged_root()
    files = {
        root / defaults.COMPOSE_FILE: (packaged / defaults.COMPOSE_FILE).read_text("utf-8"),
    }
    for source in sorted((packaged / defaults.PROFILES).glob("*.toml")):
        if source.name.endswith(".local.toml"):
            continue
        files[root / defaults.PROFILES / source.name] = source.read_text("utf-8")
    if backend is not None:
        local = root / defaults.PROFILES / "local.toml"
        relative = Path(os.path.relpath(backend.resolve(), local.parent.resolve())).as_posix()
        text, count = _CONTEXT_LINE.subn(
            f'context = "{relative}"   # the backend checkout, relative to this file',
            files[local],
            count=1,
        )
        if count != 1:  # the packaged profile lost its commented example: a bug here
            raise AssertionError("profiles/local.toml has no `# context = ...` line")
        files[local] = text
    return files


def write_starter(root: Path, backend: Path | None = None) -> Started:
    """Write the starter files, or refuse (writing nothing) when one of them exists."""
    files = starter_files(root, backend)
    existing = [p for p in files if p.exists()]
    if existing:
        shown = ", ".join(str(p.relative_to(root)) for p in existing)
        raise RefusedError(
            f"{shown} already exist{'s' if len(existing) == 1 else ''} in {root}; "
            "nothing was written",
            hint="move them aside to start afresh, or edit them: `devenv config` checks them",
        )
    written: list[Path] = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as fh:  # never replaces a file made meanwhile
            fh.write(text)
        written.append(path)
    return Started(tuple(written), _ignore(root), backend)


def _ignore(root: Path) -> tuple[str, ...]:
    """Add what must not be committed to the repository's .gitignore; the lines added."""
    path = root / ".gitignore"
    text = path.read_text("utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = tuple(line for line in IGNORED if line not in present)
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        block = "# devenv: generated credentials, personal overrides, secrets\n"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(prefix + block + "\n".join(missing) + "\n")
    return missing
