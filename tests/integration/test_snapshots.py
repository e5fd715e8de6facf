"""Snapshots on the real stack: save, restore, reset, refusals, and done only once ready."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from devenv.snapshot.store import Store
from tests.integration.conftest import Stack
from tests.integration.test_profiles_live import OutsidePostgres, outside_postgres

__all__ = ["outside_postgres"]  # the fixture, used below by name

TABLES = ("users", "sessions", "user_roles", "blobs", "items")


def s3(stack: Stack) -> Any:
    import boto3

    target = stack.storage()
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
    )


def objects(stack: Stack) -> dict[str, tuple[str, str]]:
    """key -> (sha256 of the bytes, content type), devenv's own scratch keys aside."""
    client, bucket = s3(stack), stack.storage().bucket
    found: dict[str, tuple[str, str]] = {}
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    for entry in listed:
        key = entry["Key"]
        if key.startswith(".devenv-"):
            continue
        got = client.get_object(Bucket=bucket, Key=key)
        found[key] = (hashlib.sha256(got["Body"].read()).hexdigest(), got.get("ContentType", ""))
    return found


def counts(stack: Stack) -> dict[str, int]:
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        result = {}
        for table in TABLES:
            if table in present:
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                result[table] = int(row[0]) if row else -1
        return result


def fill(stack: Stack, *, rows: int, files: int) -> None:
    """Rows in a table of the test's own and objects with several content types."""
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, body text)")
        conn.execute(
            "INSERT INTO items (body) SELECT md5(g::text) FROM generate_series(1, %s) g", (rows,)
        )
    client, bucket = s3(stack), stack.storage().bucket
    for i in range(files):
        kind = ("image/png", "application/pdf", "text/plain")[i % 3]
        client.put_object(
            Bucket=bucket, Key=f"blobs/{i:03d}", Body=secrets.token_bytes(100 + i), ContentType=kind
        )


def damage(stack: Stack, cycle: int) -> None:
    """Change rows; delete, replace and add objects; change one object's type alone."""
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("DELETE FROM items WHERE id %% 3 = %s", (cycle % 3,))
        conn.execute("INSERT INTO items (body) VALUES ('new')")
        conn.execute("UPDATE users SET name = 'changed'")
    client, bucket = s3(stack), stack.storage().bucket
    same = client.get_object(Bucket=bucket, Key="blobs/000")["Body"].read()
    client.put_object(Bucket=bucket, Key="blobs/000", Body=same, ContentType="x-only/the-type")
    client.delete_object(Bucket=bucket, Key=f"blobs/{cycle % 10:03d}")
    client.put_object(Bucket=bucket, Key="blobs/001", Body=b"replaced", ContentType="text/csv")
    client.put_object(Bucket=bucket, Key=f"extra/{cycle}", Body=b"x")


def healthy(stack: Stack) -> None:
    answer = httpx.get(stack.backend_url() + "/health", timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "healthy"


def test_save_damage_restore_twenty_times_gives_the_same_rows_and_objects(stack: Stack) -> None:
    fill(stack, rows=500, files=12)
    want_rows, want_objects = counts(stack), objects(stack)
    assert want_rows["items"] == 500
    assert len(want_objects) == 12
    with psycopg.connect(stack.database_url(), autocommit=True) as conn:
        users = conn.execute("SELECT id, name FROM users ORDER BY id").fetchall()
    saved = stack.cli("snapshot", "save", "base")
    assert "Saved snapshot base" in saved.stdout
    assert "12 object(s)" in saved.stdout
    healthy(stack)

    for cycle in range(20):
        damage(stack, cycle)
        assert counts(stack) != want_rows or objects(stack) != want_objects
        done = stack.cli("snapshot", "restore", "base")
        assert done.stdout.rstrip().endswith("done."), done.stdout
        assert counts(stack) == want_rows, f"cycle {cycle}"
        assert objects(stack) == want_objects, f"cycle {cycle}"
    with psycopg.connect(stack.database_url(), autocommit=True) as conn:
        assert conn.execute("SELECT id, name FROM users ORDER BY id").fetchall() == users
        leftovers = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'devenv_tmp_%'"
        ).fetchall()
    assert leftovers == []
    healthy(stack)

    listed = json.loads(stack.cli("snapshot", "list", "--json").stdout)["snapshots"]
    by_name = {s["name"]: s for s in listed}
    assert set(by_name) == {"golden", "base"}
    base = by_name["base"]
    assert base["state"] == "ok"
    assert base["postgres"]["major"] == 15
    assert [m["version"] for m in base["migrations"]] == [20260101000001, 20260101000002]
    assert base["backend"]["source"].endswith("backend")
    assert base["bucket"]["count"] == 12
    assert base["postgres"]["bytes"] > 0


def test_snapshot_store_is_private_and_rm_forgets_it(stack: Stack) -> None:
    fill(stack, rows=10, files=3)
    stack.cli("snapshot", "save", "keep")
    again = stack.cli("snapshot", "save", "keep", check=False)
    assert again.returncode == 9, again.stderr
    assert "--force" in again.stderr
    stack.cli("snapshot", "save", "keep", "--force")

    store = Store(stack.project)
    modes = {p: p.stat().st_mode & 0o777 for p in [store.root, *store.root.rglob("*")]}
    assert modes
    for path, mode in modes.items():
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))

    stack.cli("snapshot", "rm", "keep")
    assert "keep" not in stack.cli("snapshot", "list").stdout
    with psycopg.connect(stack.database_url(), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'devenv_snap_keep'")
        assert row.fetchone() is None
    gone = stack.cli("snapshot", "restore", "keep", check=False)
    assert gone.returncode == 3, gone.stderr
    assert "snapshot list" in gone.stderr


def test_reset_returns_to_the_golden_state_and_refresh_retakes_it(stack: Stack) -> None:
    golden_rows, golden_objects = counts(stack), objects(stack)
    assert golden_rows["users"] == 1  # the seeded dev user
    assert golden_objects == {}
    fill(stack, rows=50, files=5)
    done = stack.cli("reset")
    assert "Restored the golden state" in done.stdout
    assert done.stdout.rstrip().endswith("done.")
    assert counts(stack) == golden_rows
    assert objects(stack) == golden_objects
    healthy(stack)

    fill(stack, rows=7, files=2)
    refreshed_rows, refreshed_objects = counts(stack), objects(stack)
    stack.cli("reset", "--golden-refresh")
    damage(stack, 1)
    stack.cli("reset")
    assert counts(stack) == refreshed_rows
    assert objects(stack) == refreshed_objects
    healthy(stack)


def _forge(stack: Stack, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = Store(stack.project).manifests_dir / f"{name}.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("forgery", "said"),
    [
        (lambda raw: raw["postgres"].update(major=14, version="14.12"), "Postgres 14"),
        (
            lambda raw: raw["migrations"].append(
                {"version": 20991231000000, "description": "x", "success": True, "checksum": "00"}
            ),
            "not in the source: 20991231000000",
        ),
    ],
    ids=["other-major", "unknown-migration"],
)
def test_incompatible_snapshot_is_refused_with_data_untouched(
    stack: Stack, forgery: Callable[[dict[str, Any]], None], said: str
) -> None:
    fill(stack, rows=20, files=4)
    stack.cli("snapshot", "save", "forged")
    damage(stack, 0)
    rows, objs = counts(stack), objects(stack)
    backend_id = stack.container("backend").id
    _forge(stack, "forged", forgery)

    refused = stack.cli("snapshot", "restore", "forged", check=False)
    assert refused.returncode == 9, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("Refused: ")
    assert said in lines[0]
    assert "nothing was changed" in lines[0]
    assert counts(stack) == rows
    assert objects(stack) == objs
    backend = stack.container("backend")
    assert backend.id == backend_id
    assert backend.status == "running"
    healthy(stack)


def test_external_provider_is_refused_and_never_touched(
    make_stack: Callable[..., Stack], outside_postgres: OutsidePostgres
) -> None:
    stack = make_stack(DEVENV_HYBRID_DATABASE_URL=outside_postgres.url)
    stack.cli("up", "--profile", "hybrid")
    with psycopg.connect(outside_postgres.url, autocommit=True) as conn:
        before = conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall()
    for args in (
        ("snapshot", "save", "x"),
        ("snapshot", "restore", "x"),
        ("reset",),
        ("reset", "--golden-refresh"),
    ):
        refused = stack.cli(*args, "--profile", "hybrid", check=False)
        assert refused.returncode == 9, (args, refused.stderr)
        assert "postgres is a protected external provider" in refused.stderr, refused.stderr
        assert outside_postgres.password not in refused.stdout + refused.stderr
    with psycopg.connect(outside_postgres.url, autocommit=True) as conn:
        assert conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall() == before
    assert Store(stack.project).names() == []  # `up` took no golden state of external data


def test_restore_is_not_done_until_the_backend_is_ready(stack: Stack) -> None:
    """A snapshot whose pending migration fails at the backend's start: the restore replaces
    the data, the backend exits, and the restore says so (exit 7) instead of "done"."""
    stack.cli("snapshot", "save", "good")
    with psycopg.connect(stack.database_url(), autocommit=True) as conn:
        conn.execute("DELETE FROM _sqlx_migrations WHERE version = 20260101000002")
        conn.execute("DROP TABLE blobs")
        conn.execute("CREATE VIEW blobs AS SELECT id AS user_id, created_at FROM users")
    # the save restarts the backend, which fails on the view: that is reported, not hidden
    saved = stack.cli("snapshot", "save", "broken", check=False)
    assert saved.returncode == 7, saved.stdout + saved.stderr
    stack.cli("snapshot", "restore", "good")
    healthy(stack)

    failed = stack.cli("snapshot", "restore", "broken", "--timeout", "20", check=False)
    assert failed.returncode == 7, failed.stdout + failed.stderr
    assert "done" not in failed.stdout
    assert "service backend: container exited" in failed.stderr
    assert "the data was restored" in failed.stderr

    again = stack.cli("snapshot", "restore", "good")
    assert again.stdout.rstrip().endswith("done.")
    assert "backend: GET 200" in again.stdout
    healthy(stack)


def test_up_plans_the_golden_snapshot_and_down_volumes_deletes_the_snapshots(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    planned = json.loads(stack.cli("up", "--dry-run", "--json").stdout)["plan"]
    golden = [s for s in planned if s["kind"] == "snapshot-golden"]
    assert [s["cause"] for s in golden] == [
        "first healthy up of this project: keep its state for `devenv reset`"
    ]
    assert {"wait-ready:backend", "seed-user:dev-user"} <= set(golden[0]["after"])
    up = stack.cli("up")
    assert "golden snapshot taken" in up.stderr
    assert Store(stack.project).names() == ["golden"]
    again = json.loads(stack.cli("up", "--dry-run", "--json").stdout)
    assert again["noop"] is True, again["plan"]

    stack.cli("snapshot", "save", "mine")
    stack.cli("snapshot", "rm", "golden")
    replan = stack.cli("up", "--dry-run").stdout
    assert "snapshot-golden   golden" in replan
    stack.cli("up")
    assert Store(stack.project).names() == ["golden", "mine"]

    refused = stack.cli("down", "--volumes", check=False, input_text="")
    assert refused.returncode == 9
    assert "and its snapshots" in refused.stderr
    assert Store(stack.project).root.exists()
    down = stack.cli("down", "--volumes", "--yes")
    assert "Deleted snapshots: golden, mine." in down.stdout
    assert not Store(stack.project).root.exists()
