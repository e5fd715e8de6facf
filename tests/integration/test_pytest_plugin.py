"""The pytest plugin on the real stack: inner pytest sessions under xdist, isolation per test,
attaching or bringing the stack up, and nothing left behind by a killed run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import REPO, Stack
from tests.integration.test_snapshots import s3

ISOLATION = """
import uuid

import psycopg
import pytest


@pytest.mark.parametrize("n", range(8))
def test_own_row_and_own_prefix(devenv_stack, devenv_database, devenv_bucket_prefix, n):
    email = f"plugin-{n}-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(devenv_database, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) VALUES (%s)", (email,))
        mine = conn.execute("SELECT email FROM users WHERE email LIKE 'plugin-%%'").fetchall()
        dev = conn.execute("SELECT count(*) FROM users WHERE email = 'dev@localhost'").fetchone()
    assert mine == [(email,)]
    assert dev == (1,)  # cloned from the golden state: migrated and seeded
    assert devenv_database != devenv_stack.database_url

    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=devenv_stack.s3_endpoint,
        region_name=devenv_stack.s3_region,
        aws_access_key_id=devenv_stack.s3_access_key,
        aws_secret_access_key=devenv_stack.s3_secret_key,
    )
    s3.put_object(Bucket=devenv_stack.s3_bucket, Key=devenv_bucket_prefix + "f", Body=b"x")
    listed = s3.list_objects_v2(Bucket=devenv_stack.s3_bucket, Prefix=".devenv-test/")
    keys = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/f")]
    assert devenv_bucket_prefix + "f" in keys
"""

HANG = """
import pathlib
import time

import boto3


def test_hangs(devenv_stack, devenv_database, devenv_bucket_prefix):
    s3 = boto3.client(
        "s3",
        endpoint_url=devenv_stack.s3_endpoint,
        region_name=devenv_stack.s3_region,
        aws_access_key_id=devenv_stack.s3_access_key,
        aws_secret_access_key=devenv_stack.s3_secret_key,
    )
    s3.put_object(Bucket=devenv_stack.s3_bucket, Key=devenv_bucket_prefix + "f", Body=b"x")
    pathlib.Path("started").write_text(devenv_database)
    time.sleep(600)
"""

HOLD = """
import os
import pathlib
import time

import boto3
import psycopg


def test_holds_its_database_until_released(devenv_stack, devenv_database, devenv_bucket_prefix):
    s3 = boto3.client(
        "s3",
        endpoint_url=devenv_stack.s3_endpoint,
        region_name=devenv_stack.s3_region,
        aws_access_key_id=devenv_stack.s3_access_key,
        aws_secret_access_key=devenv_stack.s3_secret_key,
    )
    s3.put_object(Bucket=devenv_stack.s3_bucket, Key=devenv_bucket_prefix + "f", Body=b"x")
    sync = pathlib.Path(os.environ["SYNC"])
    role = os.environ["ROLE"]
    (sync / f"{role}.tmp").write_text(devenv_database.rsplit("/", 1)[1] + " " + str(os.getpid()))
    (sync / f"{role}.tmp").replace(sync / f"{role}.db")
    deadline = time.monotonic() + 300
    while not (sync / "release").exists():
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.05)  # waiting for the outer test, another process
    with psycopg.connect(devenv_database, autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 1  # still ours
    listed = s3.list_objects_v2(Bucket=devenv_stack.s3_bucket, Prefix=devenv_bucket_prefix)
    assert [o["Key"] for o in listed.get("Contents", [])] == [devenv_bucket_prefix + "f"]
"""

TRIVIAL = """
def test_attached(devenv_stack):
    assert devenv_stack.backend_url.startswith("http://127.0.0.1:")
"""


def inner(tmp: Path, stack: Stack, source: str, *args: str) -> list[str]:
    (tmp / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp / "test_inner.py").write_text(source)
    return [sys.executable, "-m", "pytest", "-q", "-W", "error", *args, "test_inner.py"]


def run(tmp: Path, stack: Stack, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        inner(tmp, stack, source, *args),
        cwd=tmp,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def leftovers(stack: Stack) -> tuple[list[str], list[str]]:
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        dbs = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'devenv_t_%' ORDER BY 1"
        ).fetchall()
    listed = s3(stack).list_objects_v2(Bucket=stack.storage().bucket, Prefix=".devenv-test/")
    return [r[0] for r in dbs], [o["Key"] for o in listed.get("Contents", [])]


def test_xdist_workers_each_see_only_their_own_rows(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack()
    refused = run(tmp_path, stack, TRIVIAL)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not running as configured" in refused.stdout
    assert "--devenv-up" in refused.stdout
    assert stack.containers() == []  # without --devenv-up nothing is started

    done = run(tmp_path, stack, ISOLATION, "-n", "4", "--devenv-up")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout
    assert leftovers(stack) == ([], [])

    attached = run(tmp_path, stack, TRIVIAL)
    assert attached.returncode == 0, attached.stdout + attached.stderr


def test_a_killed_run_leaves_nothing_after_the_next_start(stack: Stack, tmp_path: Path) -> None:
    cmd = inner(tmp_path, stack, HANG, "-n", "2")
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=stack.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        marker = tmp_path / "started"
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the inner run ended early"
            assert time.monotonic() < deadline, "the inner test never started"
            time.sleep(0.05)  # polling another process's progress
        dbs, keys = leftovers(stack)
        # the test's database, and maybe the next test's, cloned ahead in the background
        assert marker.read_text().rsplit("/", 1)[1] in dbs
        assert len(keys) == 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    after_kill = leftovers(stack)
    assert set(dbs) <= set(after_kill[0])  # SIGKILL: no teardown ran
    assert after_kill[1] == keys

    after = run(tmp_path, stack, TRIVIAL)
    assert after.returncode == 0, after.stdout + after.stderr
    assert leftovers(stack) == ([], [])


def _holding(
    tmp: Path, stack: Stack, sync: Path, role: str, *, namespace: bool
) -> subprocess.Popen[str]:
    """An inner run of HOLD that keeps its database (and prefix) until `sync/release` exists;
    `namespace`: in a PID namespace of its own, where its pytest is pid 1."""
    cmd = inner(tmp, stack, HOLD)
    if namespace:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp,
        env=stack.env(ROLE=role, SYNC=str(sync)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    marker = sync / f"{role}.db"
    deadline = time.monotonic() + 180
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"inner run {role} ended early:\n{proc.communicate()[0]}")
        assert time.monotonic() < deadline, f"inner run {role} never took its database"
        time.sleep(0.05)  # polling another process's progress
    return proc


def test_runs_in_other_pid_namespaces_keep_theirs_and_a_killed_one_is_swept(
    stack: Stack, tmp_path: Path
) -> None:
    """Owners are told apart by a Postgres advisory lock, not by pid: a run in another PID
    namespace (its pytest is pid 1 there) is as alive to a host run as to its own kind."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("PID namespaces need root and util-linux's unshare (CI runs as root)")
    sync = tmp_path / "sync"
    sync.mkdir()
    procs: list[subprocess.Popen[str]] = []
    try:
        # each run sweeps when its session starts, while the ones before it hold theirs
        procs.append(_holding(tmp_path, stack, sync, "ns", namespace=True))
        procs.append(_holding(tmp_path, stack, sync, "host", namespace=False))
        procs.append(_holding(tmp_path, stack, sync, "ns2", namespace=True))
        held = {role: (sync / f"{role}.db").read_text().split() for role in ("ns", "host", "ns2")}
        assert held["ns"][1] == held["ns2"][1] == "1"  # pid 1, each in its own namespace
        dbs, keys = leftovers(stack)
        assert {name for name, _ in held.values()} <= set(dbs), dbs
        assert len({k.split("/")[1].split("_")[0] for k in keys}) == 3  # three owners' prefixes

        killed = procs.pop()
        os.killpg(killed.pid, signal.SIGKILL)  # no teardown: its database stays for now
        killed.communicate(timeout=30)
        assert held["ns2"][0] in leftovers(stack)[0]

        (sync / "release").write_text("")
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out  # each found its database and prefix intact
            assert "1 passed" in out
        procs.clear()
        dbs, keys = leftovers(stack)
        # the survivors cleaned up after themselves; the killed run's (its test's database
        # and the clones it had ready for the next tests) are all that is left
        owner = held["ns2"][0].rsplit("_", 1)[0]
        assert held["ns2"][0] in dbs
        assert {name.rsplit("_", 1)[0] for name in dbs} == {owner}
        assert len(keys) == 1

        after = run(tmp_path, stack, TRIVIAL)  # the next run sweeps the killed one's
        assert after.returncode == 0, after.stdout + after.stderr
        assert leftovers(stack) == ([], [])
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


def test_plugin_is_registered_as_devenv() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--devenv-up" in shown.stdout
