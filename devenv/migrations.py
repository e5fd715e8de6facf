"""A backend source's sqlx migration set, a database's applied rows, and how the two compare."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devenv.errors import ConfigError, RefusedError

# sqlx's file name forms: `<version>_<description>.sql`, or the reversible pair
# `.up.sql` / `.down.sql`. Down scripts are only run by `sqlx migrate revert`, so they are
# not part of what a starting service checks the database against.
_UP_SUFFIXES = (".up.sql", ".sql")
_DOWN_SUFFIX = ".down.sql"
SHOWN = 4  # migrations named in one line before "(+N more)"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    checksum: bytes  # SHA-384 of the file's bytes, as sqlx records it
    file: str


@dataclass(frozen=True)
class MigrationSet:
    """The migrations a backend source embeds: what its binary will accept in a database."""

    source: Path  # the checkout the backend is built from (or the directory, for an image)
    directory: Path
    migrations: tuple[Migration, ...]  # sorted by version, down scripts left out

    def get(self, version: int) -> Migration | None:
        for m in self.migrations:
            if m.version == version:
                return m
        return None


@dataclass(frozen=True)
class AppliedMigration:
    """One row of `_sqlx_migrations`."""

    version: int
    description: str
    success: bool
    checksum: bytes


@dataclass(frozen=True)
class Verdict:
    """Applied rows against a known set, the way sqlx judges them at start-up."""

    applied: tuple[AppliedMigration, ...]
    unknown: tuple[AppliedMigration, ...]  # applied, but not in the source
    changed: tuple[AppliedMigration, ...]  # applied with another checksum than the source's
    failed: tuple[AppliedMigration, ...]  # recorded with success = false (dirty)
    pending: tuple[Migration, ...]  # in the source, not applied yet

    @property
    def ok(self) -> bool:
        return not (self.unknown or self.changed or self.failed)


def checksum(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def parse_name(name: str) -> tuple[int, str, bool] | None:
    """`<version>_<description>.sql` -> (version, description, is_down); None when sqlx would
    skip the file. Raises ValueError for a version that is not an integer (sqlx fails too)."""
    version_text, sep, rest = name.partition("_")
    if not sep or not rest.endswith(".sql"):
        return None
    down = rest.endswith(_DOWN_SUFFIX)
    suffix = _DOWN_SUFFIX if down else next(s for s in _UP_SUFFIXES if rest.endswith(s))
    version = int(version_text)  # ValueError: not a sqlx migration name
    return version, rest[: -len(suffix)].replace("_", " "), down


def read_migration_set(directory: Path, *, source: Path, display: str) -> MigrationSet:
    """Read a migrations directory as sqlx does; `display` names it in errors."""
    found: dict[int, Migration] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ConfigError(
            f"cannot read the migrations directory: {exc.strerror}", file=display
        ) from exc
    for path in entries:
        if not path.is_file():
            continue
        try:
            parsed = parse_name(path.name)
        except ValueError:
            raise ConfigError(
                f"migration {path.name}: the version before `_` is not an integer",
                file=display,
                hint="name migrations <version>_<description>.sql, as sqlx does",
            ) from None
        if parsed is None or parsed[2]:
            continue
        version, description, _ = parsed
        if version in found:
            raise ConfigError(
                f"migrations {found[version].file} and {path.name} share version {version}",
                file=display,
                hint="give each migration its own version",
            )
        found[version] = Migration(version, description, checksum(path.read_bytes()), path.name)
    ordered = tuple(found[v] for v in sorted(found))
    return MigrationSet(source=source, directory=directory, migrations=ordered)


def compare(known: MigrationSet, applied: Sequence[AppliedMigration]) -> Verdict:
    unknown: list[AppliedMigration] = []
    changed: list[AppliedMigration] = []
    failed = [row for row in applied if not row.success]
    for row in applied:
        mine = known.get(row.version)
        if mine is None:
            unknown.append(row)
        elif row.success and mine.checksum != row.checksum:
            changed.append(row)
    done = {row.version for row in applied}
    pending = tuple(m for m in known.migrations if m.version not in done)
    return Verdict(tuple(applied), tuple(unknown), tuple(changed), tuple(failed), pending)


def _names(items: Iterable[Migration | AppliedMigration]) -> str:
    listed = [f"{m.version} {m.description}".strip() for m in items]
    if not listed:
        return "none"
    more = f" (+{len(listed) - SHOWN} more)" if len(listed) > SHOWN else ""
    return ", ".join(listed[:SHOWN]) + more


def problems(verdict: Verdict) -> str:
    parts = []
    if verdict.unknown:
        parts.append(f"not in the source: {_versions(verdict.unknown)}")
    if verdict.changed:
        parts.append(f"changed since applied (checksum differs): {_versions(verdict.changed)}")
    if verdict.failed:
        parts.append(f"recorded as failed: {_versions(verdict.failed)}")
    return "; ".join(parts)


def _versions(rows: Sequence[AppliedMigration]) -> str:
    shown = ", ".join(str(r.version) for r in rows[:SHOWN])
    return shown + (f" (+{len(rows) - SHOWN} more)" if len(rows) > SHOWN else "")


def conflict(
    verdict: Verdict, known: MigrationSet, *, project: str, source: str, external: bool
) -> RefusedError:
    """The one line `up` stops with: both sides, what differs, and the ways out."""
    where = "the external database" if external else f"the database of project {project}"
    message = (
        f"backend source {source} does not match {where} ({problems(verdict)}): "
        f"applied {_names(verdict.applied)}; the source knows {_names(known.migrations)}"
    )
    if external:
        hint = (
            "point services.postgres.url at a database of its own for this backend source; "
            "devenv only read it and started nothing"
        )
    else:
        hint = (
            "run this source in a separate stack with `--project NAME`, or drop this "
            "project's data with `devenv down --volumes`; nothing was started or deleted"
        )
    return RefusedError(message, hint=hint)


def summary(verdict: Verdict, source: str) -> str:
    """The `postgres.migrations` check's detail line."""
    latest = max((r.version for r in verdict.applied if r.success), default=None)
    text = f"{len(verdict.applied)} applied, latest {latest}" if verdict.applied else "none applied"
    if not verdict.ok:
        return f"{text}; {problems(verdict)} (backend source {source})"
    text += f", all known to {source}"
    if verdict.pending:
        text += f"; pending: {_names(verdict.pending)}"
    return text
