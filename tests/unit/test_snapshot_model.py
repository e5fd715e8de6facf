"""Snapshot names, the manifest's round trip, the refusals, the store's modes and the plugin's
owner tokens and reprs: the pure parts of snapshots."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devenv.errors import ConfigError, RefusedError
from devenv.migrations import AppliedMigration, Migration, MigrationSet, checksum
from devenv.pytest_plugin import (
    DevenvStack,
    SecretStr,
    lock_key,
    new_owner,
    owned_database_owner,
    owned_prefix_owner,
)
from devenv.snapshot.model import (
    FILE_COPY_FROM,
    Manifest,
    ObjectEntry,
    check_name,
    clone_strategy,
    database_name,
    refusal,
    reserved,
)
from devenv.snapshot.store import Store, project_key

ONE, TWO = checksum(b"one"), checksum(b"two")
KNOWN = MigrationSet(
    source=Path("/src/backend"),
    directory=Path("/src/backend/migrations"),
    migrations=(Migration(1, "one", ONE, "1_one.sql"), Migration(2, "two", TWO, "2_two.sql")),
)


def manifest(**changes: object) -> Manifest:
    base: dict[str, object] = {
        "name": "before-7",
        "project": "p",
        "token": "abc123",
        "created_at": "2026-01-01T00:00:00+00:00",
        "database": "devenv_snap_before-7",
        "source_database": "ignition",
        "pg_major": 15,
        "pg_version": "15.10",
        "migrations": (AppliedMigration(1, "one", True, ONE),),
        "backend_source": "/src/backend",
        "backend_image": "devenv-standin/backend:src-1",
        "database_bytes": 8_000_000,
        "bucket": "ignition",
        "objects": (
            ObjectEntry("a/b.png", "00" * 32, 3, "image/png", (("owner", "dev"),)),
            ObjectEntry("c.txt", "11" * 32, 5, "text/plain"),
        ),
    }
    base.update(changes)
    return Manifest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["golden", "before-7", "a", "x_1", "0" * 40])
def test_names_that_are_allowed(name: str) -> None:
    assert check_name(name) == name
    assert database_name(name).startswith("devenv_snap_")
    assert len(database_name(name)) <= 63  # Postgres identifier limit


@pytest.mark.parametrize("name", ["", "-x", "Upper", "a b", "a/b", "x" * 41, "é", "a;drop"])
def test_names_that_are_refused_name_the_argument(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_name(name)
    assert "NAME" in err.value.message
    assert err.value.exit_code == 3


def test_manifest_round_trips_through_json() -> None:
    m = manifest()
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert again.object_bytes == 8
    assert again.latest_migration == 1
    assert not again.golden
    assert manifest(name="golden").golden


@pytest.mark.parametrize("broken", [{"format": 2}, {"postgres": {}}, {"migrations": [{}]}])
def test_malformed_manifest_raises(broken: dict[str, object]) -> None:
    raw = manifest().to_json() | broken
    with pytest.raises((KeyError, TypeError, ValueError)):
        Manifest.from_json(raw)


def test_same_major_and_known_migrations_may_be_restored() -> None:
    assert refusal(manifest(), pg_major=15, known=KNOWN) is None
    assert refusal(manifest(), pg_major=15, known=None) is None  # unknown source: not judged


def test_another_postgres_major_is_refused() -> None:
    why = refusal(manifest(pg_major=14, pg_version="14.9"), pg_major=15, known=KNOWN)
    assert why is not None
    assert "Postgres 14" in why
    assert "Postgres 15" in why


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ((AppliedMigration(3, "three", True, ONE),), "not in the source: 3"),
        ((AppliedMigration(2, "two", True, ONE),), "checksum differs"),
        ((AppliedMigration(1, "one", False, ONE),), "recorded as failed: 1"),
    ],
)
def test_migrations_the_source_does_not_accept_are_refused(
    rows: tuple[AppliedMigration, ...], said: str
) -> None:
    why = refusal(manifest(migrations=rows), pg_major=15, known=KNOWN)
    assert why is not None
    assert said in why
    assert "/src/backend" in why


def test_clone_strategy_follows_the_size() -> None:
    assert clone_strategy(FILE_COPY_FROM, 15) == "FILE_COPY"
    assert clone_strategy(FILE_COPY_FROM - 1, 16) == "WAL_LOG"
    assert clone_strategy(10**9, 14) is None  # STRATEGY exists from Postgres 15 on


def test_reserved_keys_are_devenvs_scratch() -> None:
    assert reserved(".devenv-probe/x")
    assert reserved(".devenv-test/1_abcdef_0/k")
    assert not reserved("blobs/.devenv-probe/x")
    assert not reserved("a.png")


def test_store_keeps_files_private_and_drops_unreferenced_objects(tmp_path: Path) -> None:
    store = Store("my project", root=tmp_path)
    digest = store.add_object(b"abc")
    orphan = store.add_object(b"nobody")
    entry = ObjectEntry("k", digest, 3, "text/plain")
    store.write(manifest(objects=(entry,)))
    for path in (store.root, store.objects_dir, store.manifests_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (store.object_path(digest), store.manifests_dir / "before-7.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert store.read_object(digest) == b"abc"
    assert store.gc() == 1
    assert not store.object_path(orphan).exists()
    assert store.names() == ["before-7"]
    assert store.load("before-7") == manifest(objects=(entry,))
    assert store.remove("before-7")
    assert store.gc() == 1
    assert store.load("before-7") is None


def test_store_detects_a_damaged_object_and_manifest(tmp_path: Path) -> None:
    store = Store("p", root=tmp_path)
    digest = store.add_object(b"abc")
    store.object_path(digest).write_bytes(b"abd")
    with pytest.raises(ValueError, match="does not match"):
        store.read_object(digest)
    store.write(manifest())
    (store.manifests_dir / "before-7.json").write_text("{", encoding="utf-8")
    with pytest.raises(RefusedError, match="unreadable"):
        store.load("before-7")


@pytest.mark.parametrize(("project", "same"), [("ignition", True), ("a/../b", False)])
def test_project_keys_are_safe_directory_names(project: str, same: bool) -> None:
    key = project_key(project)
    assert (key == project) is same
    assert "/" not in key
    assert not key.startswith(".")


def test_owner_tokens_are_random_and_fit_a_signed_int4_lock_key() -> None:
    owners = {new_owner() for _ in range(50)}
    assert len(owners) == 50
    assert all(len(o) == 8 and int(o, 16) >= 0 for o in owners)
    assert lock_key("00000000") == 0
    assert lock_key("7fffffff") == 2**31 - 1
    assert lock_key("80000000") == -(2**31)
    assert lock_key("ffffffff") == -1


def test_owned_names_parse_back_to_their_owner() -> None:
    assert owned_database_owner("devenv_t_0a1b2c3d_7") == "0a1b2c3d"
    assert owned_database_owner("devenv_snap_golden") is None
    assert owned_database_owner("devenv_t_0a1b2c3d_7x") is None
    assert owned_database_owner("devenv_t_123_abcdef_7") is None  # pid-named: not ours to judge
    assert owned_prefix_owner("00ff00aa_3/") == "00ff00aa"
    assert owned_prefix_owner("00ff00aa_3/extra/") is None


def test_the_plugins_objects_never_show_a_secret() -> None:
    password, secret_key = "Pw-Zq8&'<>", "sk-Zq9XnTr"
    stack = DevenvStack(
        project="p",
        database_url=SecretStr(f"postgres://ignition:{password}@127.0.0.1:5432/ignition"),
        s3_endpoint="http://127.0.0.1:9000",
        s3_bucket="ignition",
        s3_region="us-east-1",
        s3_access_key=SecretStr("AKIDZq7"),
        s3_secret_key=SecretStr(secret_key),
        backend_url="http://127.0.0.1:8080",
        golden=True,
    )
    for shown in (repr(stack), str(stack), repr(stack.database_url), repr([stack])):
        assert "Zq" not in shown, shown
    assert "postgres://ignition:****@127.0.0.1:5432/ignition" in repr(stack)
    assert "s3_secret_key='****'" in repr(stack)
    assert "s3_bucket='ignition'" in repr(stack)
    # the values themselves are whole: tests connect with them
    assert str(stack.database_url).count(password) == 1
    assert f"{stack.s3_secret_key}" == secret_key


def test_an_object_version_covers_bytes_type_and_metadata() -> None:
    base = ObjectEntry("k", "00" * 32, 3, "image/png", (("a", "1"),))
    assert base.version == ObjectEntry("k", "00" * 32, 3, "image/png", (("a", "1"),)).version
    assert base.version != ObjectEntry("k", "11" * 32, 3, "image/png", (("a", "1"),)).version
    assert base.version != ObjectEntry("k", "00" * 32, 3, "text/plain", (("a", "1"),)).version
    assert base.version != ObjectEntry("k", "00" * 32, 3, "image/png", (("a", "2"),)).version


def test_synced_bucket_state_round_trips_and_forgets_garbage(tmp_path: Path) -> None:
    store = Store("p", root=tmp_path)
    assert store.synced() == {}
    store.write_synced({"k": ("v1", "2026-01-01T00:00:00+00:00|3")})
    assert store.synced() == {"k": ("v1", "2026-01-01T00:00:00+00:00|3")}
    (store.root / "bucket-synced.json").write_text("[1]", encoding="utf-8")
    assert store.synced() == {}  # unknown: every object is written back
