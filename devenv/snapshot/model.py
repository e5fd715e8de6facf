"""Snapshots as data: names, the manifest, and the pure judgements made on them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devenv.errors import ConfigError
from devenv.migrations import AppliedMigration, MigrationSet, compare, problems

FORMAT = 1
GOLDEN = "golden"
# Database names: `devenv_snap_<name>` is a sealed snapshot (a template nobody may connect to);
# `devenv_tmp_<token>_<role>` is a save or restore in flight, dropped by the next one when its
# owner died midway; `devenv_t_<pid>_<owner>_<n>` is one test's clone (the pytest plugin).
SNAPSHOT_DB_PREFIX = "devenv_snap_"
TEMP_DB_PREFIX = "devenv_tmp_"
TEST_DB_PREFIX = "devenv_t_"
# Object keys devenv writes for itself: readiness probes and the plugin's test prefixes.
# A snapshot neither keeps nor deletes them: they belong to whoever is running right now.
PROBE_PREFIX = ".devenv-probe/"
TEST_PREFIX = ".devenv-test/"
RESERVED_PREFIXES = (PROBE_PREFIX, TEST_PREFIX)
# Above this size the template is copied file by file after a checkpoint (FILE_COPY) instead
# of page by page through the WAL (WAL_LOG): measured on 107 MB, 0.09 s against 0.25-0.37 s,
# while a small database clones in 35 ms with WAL_LOG against 65 ms with FILE_COPY.
FILE_COPY_FROM = 32 * 1024 * 1024

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def check_name(name: str) -> str:
    """A snapshot name: lower-case letters, digits, `-` and `_`, at most 40 characters."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"snapshot name {name!r} is not allowed",
            key="NAME",
            hint="use lower-case letters, digits, '-' and '_' (at most 40, first a letter or "
            "digit), e.g. before-migration-7",
        )
    return name


def database_name(name: str) -> str:
    return SNAPSHOT_DB_PREFIX + name


def reserved(key: str) -> bool:
    return key.startswith(RESERVED_PREFIXES)


def clone_strategy(size_bytes: int, server_major: int) -> str | None:
    """`CREATE DATABASE ... STRATEGY` for a template of this size (None: the server's only way)."""
    if server_major < 15:
        return None
    return "FILE_COPY" if size_bytes >= FILE_COPY_FROM else "WAL_LOG"


@dataclass(frozen=True)
class GoldenFacts:
    """What `up` observes of the golden snapshot: whether the store holds one and whether its
    database still carries the same token (None: Postgres was not asked or did not answer)."""

    saved: bool = False
    intact: bool | None = None
    unreadable: str = ""  # why its metadata cannot be read ("" when it can)


@dataclass(frozen=True)
class Provenance:
    """What a snapshot's data was taken from, besides what the database itself says."""

    backend_source: str = ""  # the checkout the backend was built from ("" when unknown)
    backend_image: str = ""


@dataclass(frozen=True)
class ObjectEntry:
    """One object of the bucket: its key, the digest of its bytes (the store's file name),
    and what a client sees besides the bytes."""

    key: str
    sha256: str
    size: int
    content_type: str
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> str:
        """Everything a client reads of this object, as one digest."""
        text = json.dumps([self.sha256, self.content_type, list(self.metadata)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Manifest:
    """What one snapshot holds and what it was taken from."""

    name: str
    project: str
    token: str  # also the comment of its database: metadata and data belong together
    created_at: str  # ISO 8601, UTC
    database: str  # the sealed template database
    source_database: str
    pg_major: int
    pg_version: str
    migrations: tuple[AppliedMigration, ...]
    backend_source: str  # the checkout the backend was built from ("" when unknown)
    backend_image: str
    database_bytes: int
    bucket: str
    objects: tuple[ObjectEntry, ...] = field(default=())

    @property
    def golden(self) -> bool:
        return self.name == GOLDEN

    @property
    def object_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def latest_migration(self) -> int | None:
        return max((m.version for m in self.migrations if m.success), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "project": self.project,
            "token": self.token,
            "created_at": self.created_at,
            "golden": self.golden,
            "postgres": {
                "major": self.pg_major,
                "version": self.pg_version,
                "database": self.database,
                "source_database": self.source_database,
                "bytes": self.database_bytes,
            },
            "migrations": [
                {
                    "version": m.version,
                    "description": m.description,
                    "success": m.success,
                    "checksum": m.checksum.hex(),
                }
                for m in self.migrations
            ],
            "backend": {"source": self.backend_source, "image": self.backend_image},
            "bucket": {
                "name": self.bucket,
                "count": len(self.objects),
                "bytes": self.object_bytes,
                "objects": [
                    {
                        "key": o.key,
                        "sha256": o.sha256,
                        "size": o.size,
                        "content_type": o.content_type,
                        "metadata": dict(o.metadata),
                    }
                    for o in self.objects
                ],
            },
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Manifest:
        """Raises KeyError, TypeError or ValueError on a malformed document."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        pg, backend, bucket = raw["postgres"], raw["backend"], raw["bucket"]
        return cls(
            name=str(raw["name"]),
            project=str(raw["project"]),
            token=str(raw["token"]),
            created_at=str(raw["created_at"]),
            database=str(pg["database"]),
            source_database=str(pg["source_database"]),
            pg_major=int(pg["major"]),
            pg_version=str(pg["version"]),
            migrations=tuple(
                AppliedMigration(
                    int(m["version"]),
                    str(m["description"]),
                    bool(m["success"]),
                    bytes.fromhex(str(m["checksum"])),
                )
                for m in raw["migrations"]
            ),
            backend_source=str(backend["source"]),
            backend_image=str(backend["image"]),
            database_bytes=int(pg["bytes"]),
            bucket=str(bucket["name"]),
            objects=tuple(
                ObjectEntry(
                    key=str(o["key"]),
                    sha256=str(o["sha256"]),
                    size=int(o["size"]),
                    content_type=str(o["content_type"]),
                    metadata=tuple(sorted((str(k), str(v)) for k, v in o["metadata"].items())),
                )
                for o in bucket["objects"]
            ),
        )


def refusal(
    manifest: Manifest, *, pg_major: int, known: MigrationSet | None, source: str = ""
) -> str | None:
    """Why this snapshot must not be restored here, in one line; None when it may be.

    Another Postgres major cannot read the files; a migration the current backend source does
    not know (or knows with another checksum, or a failed one) would stop the backend at start.
    """
    if manifest.pg_major != pg_major:
        return (
            f"snapshot {manifest.name} holds Postgres {manifest.pg_major} data "
            f"({manifest.pg_version}); this stack runs Postgres {pg_major}"
        )
    if known is None:
        return None
    verdict = compare(known, manifest.migrations)
    if verdict.ok:
        return None
    return (
        f"snapshot {manifest.name} holds migrations the backend source "
        f"{source or known.source} does not accept ({problems(verdict)})"
    )


def describe_migrations(rows: Sequence[AppliedMigration]) -> str:
    done = [r.version for r in rows if r.success]
    if not done:
        return "none"
    return f"{len(done)}, latest {max(done)}"
