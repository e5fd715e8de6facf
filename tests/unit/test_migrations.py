"""A backend source's migration set read as sqlx reads it, and the verdicts against a database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from devenv.errors import ConfigError, RefusedError
from devenv.migrations import (
    AppliedMigration,
    MigrationSet,
    compare,
    conflict,
    parse_name,
    read_migration_set,
    summary,
)
from tests.unit.conftest import WriteTree

REPO = Path(__file__).resolve().parents[2]


def _set(root: Path) -> MigrationSet:
    return read_migration_set(root / "migrations", source=root, display="migrations")


def _applied(known: MigrationSet, *versions: int) -> list[AppliedMigration]:
    rows = []
    for v in versions:
        m = known.get(v)
        assert m is not None
        rows.append(AppliedMigration(v, m.description, True, m.checksum))
    return rows


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0001_schema.sql", (1, "schema", False)),
        ("20260101000001_users_roles.sql", (20260101000001, "users roles", False)),
        ("3_add_index.up.sql", (3, "add index", False)),
        ("3_add_index.down.sql", (3, "add index", True)),
        ("README.md", None),
        ("0001schema.sql", None),
        ("0001_notes.txt", None),
    ],
)
def test_names_parse_as_sqlx_does(name: str, expected: tuple[int, str, bool] | None) -> None:
    assert parse_name(name) == expected


def test_checksums_are_sha384_of_the_file_bytes(write_tree: WriteTree) -> None:
    body = "CREATE TABLE t (id int);\r\n-- crlf and ünïcode kept as they are\n"
    root = write_tree({"migrations/0001_schema.sql": body, "migrations/0002_seeds.sql": "x"})
    known = _set(root)
    assert [(m.version, m.description) for m in known.migrations] == [(1, "schema"), (2, "seeds")]
    assert known.migrations[0].checksum == hashlib.sha384(body.encode()).digest()
    assert len(known.migrations[0].checksum) == 48


def test_the_reference_backend_set_matches_its_embedded_names() -> None:
    backend = REPO / "backend"
    known = read_migration_set(backend / "migrations", source=backend, display="m")
    assert [m.version for m in known.migrations] == [20260101000001, 20260101000002]
    assert known.migrations[1].description == "blobs"


def test_down_scripts_are_not_known_versions(write_tree: WriteTree) -> None:
    root = write_tree(
        {
            "migrations/1_a.up.sql": "up",
            "migrations/1_a.down.sql": "down",
            "migrations/2_b.sql": "b",
            "migrations/notes.md": "skipped",
        }
    )
    known = _set(root)
    assert [(m.version, m.file) for m in known.migrations] == [(1, "1_a.up.sql"), (2, "2_b.sql")]


def test_bad_version_and_duplicates_are_config_errors(write_tree: WriteTree) -> None:
    root = write_tree({"migrations/first_schema.sql": "x"})
    with pytest.raises(ConfigError, match=r"first_schema\.sql: the version before `_`"):
        _set(root)
    (root / "migrations" / "first_schema.sql").unlink()
    (root / "migrations" / "01_a.sql").write_text("a")
    (root / "migrations" / "1_b.sql").write_text("b")
    with pytest.raises(ConfigError, match="share version 1"):
        _set(root)


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the migrations directory"):
        _set(tmp_path)


def test_verdicts(write_tree: WriteTree) -> None:
    root = write_tree({"migrations/1_schema.sql": "s", "migrations/2_seeds.sql": "d"})
    known = _set(root)
    empty = compare(known, [])
    assert empty.ok
    assert [m.version for m in empty.pending] == [1, 2]

    partial = compare(known, _applied(known, 1))
    assert partial.ok
    assert [m.version for m in partial.pending] == [2]

    other = compare(known, [AppliedMigration(20260101000001, "users", True, b"x")])
    assert not other.ok
    assert [r.version for r in other.unknown] == [20260101000001]

    edited = _applied(known, 1, 2)
    edited[1] = AppliedMigration(2, "seeds", True, b"\x00" * 48)
    changed = compare(known, edited)
    assert not changed.ok
    assert [r.version for r in changed.changed] == [2]
    assert not changed.pending

    dirty = compare(known, [*_applied(known, 1), AppliedMigration(2, "seeds", False, b"")])
    assert not dirty.ok
    assert [r.version for r in dirty.failed] == [2]
    assert not dirty.changed  # a failed row's checksum is not compared


def test_conflict_is_one_line_naming_both_sides_and_the_ways_out(write_tree: WriteTree) -> None:
    root = write_tree({"migrations/0001_schema.sql": "s", "migrations/0002_seeds.sql": "d"})
    known = _set(root)
    applied = [
        AppliedMigration(20260101000001, "users sessions roles", True, b"a"),
        AppliedMigration(20260101000002, "blobs", True, b"b"),
    ]
    error = conflict(
        compare(known, applied), known, project="demo", source="/src/app", external=False
    )
    assert isinstance(error, RefusedError)
    assert error.exit_code == 9
    line = error.one_line()
    assert "\n" not in line
    assert "backend source /src/app" in line
    assert "database of project demo" in line
    assert "20260101000001 users sessions roles, 20260101000002 blobs" in line
    assert "the source knows 1 schema, 2 seeds" in line
    assert "not in the source: 20260101000001, 20260101000002" in line
    assert "--project NAME" in line
    assert "devenv down --volumes" in line

    external = conflict(compare(known, applied), known, project="d", source="s", external=True)
    assert "external database" in external.message
    assert "--volumes" not in external.one_line()


def test_long_lists_are_cut(write_tree: WriteTree) -> None:
    root = write_tree({f"migrations/{i}_m{i}.sql": str(i) for i in range(1, 8)})
    known = _set(root)
    line = conflict(compare(known, []), known, project="p", source="s", external=False).message
    assert "1 m1, 2 m2, 3 m3, 4 m4 (+3 more)" in line


def test_summary_lines(write_tree: WriteTree) -> None:
    root = write_tree({"migrations/1_schema.sql": "s", "migrations/2_seeds.sql": "d"})
    known = _set(root)
    assert summary(compare(known, []), "src") == (
        "none applied, all known to src; pending: 1 schema, 2 seeds"
    )
    assert summary(compare(known, _applied(known, 1, 2)), "src") == (
        "2 applied, latest 2, all known to src"
    )
    assert summary(compare(known, _applied(known, 1)), "src") == (
        "1 applied, latest 1, all known to src; pending: 2 seeds"
    )
    foreign = compare(known, [AppliedMigration(9, "x", True, b"")])
    assert summary(foreign, "src") == (
        "1 applied, latest 9; not in the source: 9 (backend source src)"
    )
