"""pytest plugin `devenv`: the project's stack, a database per test cloned from the golden
state, and an object-key prefix per test; safe under pytest-xdist, clean after a crash.

Fixtures: `devenv_stack` (session), `devenv_database` and `devenv_bucket_prefix` (function).
Options: `--devenv-up`, `--devenv-project`, `--devenv-profile`.

What a test creates is named after the process that owns it (its pid and a tag of that pid's
start time, so a reused pid is not mistaken for the owner). Every session drops, when it
starts, the databases and prefixes whose owner is gone: a run killed by Ctrl-C or SIGKILL
leaves nothing behind once the next one starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from devenv.config.load import Options
    from devenv.snapshot.pg import Admin
    from devenv.snapshot.s3 import Bucket

CLONE_AHEAD = 2  # clones in flight beside the one a test takes; two threads clone them
_OWNED_DB = re.compile(r"devenv_t_(\d+)_([0-9a-f]{6})_\d+")
_OWNED_PREFIX = re.compile(r"(\d+)_([0-9a-f]{6})_\d+/")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux); None when it is gone, a
    zombie (killed, not yet reaped: an xdist worker whose controller was killed too), or
    unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name before ")" may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of proc(5)


def owner_tag(pid: int) -> str:
    return hashlib.sha256(f"{pid}:{_start_time(pid)}".encode()).hexdigest()[:6]


def owner_alive(pid: int, tag: str) -> bool:
    """Whether the process that named a resource `<pid>_<tag>` still runs."""
    if Path("/proc/self/stat").exists():
        return _start_time(pid) is not None and owner_tag(pid) == tag
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owned_database_owner(name: str) -> tuple[int, str] | None:
    found = _OWNED_DB.fullmatch(name)
    return (int(found[1]), found[2]) if found else None


def owned_prefix_owner(rest: str) -> tuple[int, str] | None:
    found = _OWNED_PREFIX.fullmatch(rest)
    return (int(found[1]), found[2]) if found else None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("devenv", "devenv stack for integration tests")
    group.addoption(
        "--devenv-up",
        action="store_true",
        default=False,
        help="devenv: bring the stack up when it is not running or its configuration changed",
    )
    group.addoption(
        "--devenv-project", default=None, help="devenv: project name (default $DEVENV_PROJECT)"
    )
    group.addoption(
        "--devenv-profile", default=None, help="devenv: profile (default $DEVENV_PROFILE)"
    )


@dataclass(frozen=True)
class DevenvStack:
    """What a test needs to reach the stack (secrets included: tests use them)."""

    project: str
    database_url: str
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key: str
    s3_secret_key: str
    backend_url: str
    golden: bool  # whether per-test databases can be cloned (local Postgres and object store)


@dataclass
class _Session:
    """This process's share of the stack: one admin session, counters, the bucket client."""

    stack: DevenvStack
    options: Options
    golden_db: str = ""
    strategy: str | None = None
    owner: str = field(default_factory=lambda: f"{os.getpid()}_{owner_tag(os.getpid())}")
    counter: Iterator[int] = field(default_factory=itertools.count)
    _admin: Admin | None = None
    _bucket: Bucket | None = None
    # Tests never wait for a drop, and seldom for a clone: CLONE_AHEAD databases are cloned
    # in the background while tests run, and drops go to a thread of their own. A clone or a
    # drop creates or removes some 300 files and (a drop) forces a checkpoint: 20-450 ms each
    # on this machine's shared disk, varying with the load; one queue for both made a test wait
    # for the previous test's drop too.
    _cloner: ThreadPoolExecutor | None = None
    _dropper: ThreadPoolExecutor | None = None
    _ahead: deque[Future[str]] = field(default_factory=deque)
    _local: threading.local = field(default_factory=threading.local)
    _admins: list[Admin] = field(default_factory=list)
    _undropped: list[str] = field(default_factory=list)

    def admin(self) -> Admin:
        from devenv.snapshot.pg import Admin

        if self._admin is None or self._admin.conn.closed:
            self._admin = Admin(self.stack.database_url)
        return self._admin

    def bucket(self) -> Bucket:
        from devenv.model import S3Target
        from devenv.snapshot.s3 import Bucket

        if self._bucket is None:
            s = self.stack
            target = S3Target(
                s.s3_endpoint, s.s3_bucket, s.s3_region, s.s3_access_key, s.s3_secret_key
            )
            self._bucket = Bucket(target)
        return self._bucket

    def sweep(self) -> None:
        """Drop what owners that are gone left behind (theirs only, never a live run's)."""
        from devenv.snapshot.model import TEST_DB_PREFIX, TEST_PREFIX

        pg = self.admin()
        with pg.step("dropping databases of finished test runs"):
            for name in pg.databases(TEST_DB_PREFIX):
                owner = owned_database_owner(name)
                if owner is not None and not owner_alive(*owner):
                    pg.drop(name)
        bucket = self.bucket()
        for prefix in bucket.prefixes(TEST_PREFIX):
            owner = owned_prefix_owner(prefix[len(TEST_PREFIX) :])
            if owner is not None and not owner_alive(*owner):
                bucket.delete_prefix(prefix)

    def take_database(self) -> str:
        """A fresh clone of the golden state for one test; another starts cloning."""
        if self._cloner is None:
            self._cloner = ThreadPoolExecutor(CLONE_AHEAD, thread_name_prefix="devenv-clone")
        while len(self._ahead) < CLONE_AHEAD + 1:
            self._ahead.append(self._cloner.submit(self._clone))
        return self._ahead.popleft().result()

    def release_database(self, name: str) -> None:
        """Drop a test's database after the test, in the background."""
        from devenv.errors import DevenvError

        def drop() -> None:
            pg = self._thread_admin()
            try:
                with pg.step(f"dropping {name}"):
                    pg.drop(name)
            except DevenvError:
                self._undropped.append(name)  # tried again when the session ends

        if self._dropper is None:
            self._dropper = ThreadPoolExecutor(1, thread_name_prefix="devenv-drop")
        self._dropper.submit(drop)

    def _thread_admin(self) -> Admin:
        """This thread's own admin session (one statement at a time per session)."""
        from devenv.snapshot.pg import Admin

        admin: Admin | None = getattr(self._local, "admin", None)
        if admin is None or admin.conn.closed:
            admin = Admin(self.stack.database_url)
            self._local.admin = admin
            self._admins.append(admin)
        return admin

    def _clone(self) -> str:
        name = f"devenv_t_{self.owner}_{next(self.counter)}"
        pg = self._thread_admin()
        with pg.step(f"cloning the golden state into {name}"):
            pg.clone(self.golden_db, name, strategy=self.strategy)
        return name

    def close(self) -> None:
        """Drop the clones no test took and wait for every drop (a session leaves nothing)."""
        from devenv.errors import DevenvError

        while self._ahead:
            with contextlib.suppress(DevenvError):
                self.release_database(self._ahead.popleft().result())
        for pool in (self._cloner, self._dropper):
            if pool is not None:
                pool.shutdown(wait=True)
        for name in self._undropped:
            with contextlib.suppress(DevenvError), self.admin().step(f"dropping {name}"):
                self.admin().drop(name)
        for admin in (self._admin, *self._admins):
            if admin is not None:
                admin.close()
        if self._bucket is not None:
            self._bucket.close()


def _options(config: pytest.Config) -> Options:
    from devenv.config.defaults import find_root
    from devenv.config.load import Options, default_project_name

    root = find_root(Path(str(config.rootpath)))
    return Options(
        root=root,
        project=config.getoption("devenv_project") or default_project_name(root),
        profile=config.getoption("devenv_profile") or os.environ.get("DEVENV_PROFILE"),
    )


def _attach(config: pytest.Config) -> _Session:
    """Attach to the stack when it runs as configured (or bring it up with --devenv-up),
    wait until every service answers, and find the golden state to clone."""
    from devenv import app
    from devenv.config.load import load_config
    from devenv.observe import current
    from devenv.plan import CHANGES
    from devenv.snapshot import service
    from devenv.snapshot.model import GOLDEN, clone_strategy, database_name
    from devenv.snapshot.store import Store

    options = _options(config)
    planned = app.plan_up(options)
    # taking a missing golden state is no change to the stack: it needs no --devenv-up
    changes = [s for s in planned.plan.steps if s.kind in CHANGES and s.kind != "snapshot-golden"]
    if changes and not config.getoption("devenv_up"):
        steps = [f"{s.kind} {s.target} ({s.cause})" for s in changes]
        raise _Unusable(
            f"stack {options.project} is not running as configured: {'; '.join(steps[:3])}",
            "run `devenv up`, or pass --devenv-up",
        )
    if not planned.plan.noop:
        app.up(options)  # under the project lock, planned again: one xdist worker does it
    elif planned.plan.error is not None:
        raise planned.plan.error
    # the ports as settled by whichever `up` ran (another xdist worker's, maybe)
    engine, stack = current(load_config(options), planned.runtime)
    storage = stack.endpoints.storage
    local = all(stack.local(s) for s in service.DATA_SERVICES)
    session = _Session(
        DevenvStack(
            project=stack.name,
            database_url=stack.endpoints.database_url,
            s3_endpoint=storage.endpoint,
            s3_bucket=storage.bucket,
            s3_region=storage.region,
            s3_access_key=storage.access_key,
            s3_secret_key=storage.secret_key,
            backend_url=stack.endpoints.backend_url,
            golden=local,
        ),
        options,
    )
    store = Store(stack.name)
    t = service.Target(stack, planned.runtime, engine, store, planned.clients(stack))
    service.wait_ready(t, service.STACK, timeout=30)
    if local:
        manifest = store.load(GOLDEN)
        if manifest is None:
            raise _Unusable(
                f"stack {options.project} has no golden state to clone (its `up` could not "
                "take it)",
                "run `devenv up` and read its warning, or `devenv reset --golden-refresh`",
            )
        with session.admin().step("reading the server version"):
            major = session.admin().server_major()
        session.golden_db = database_name(GOLDEN)
        session.strategy = clone_strategy(manifest.database_bytes, major)
        session.sweep()
    return session


class _Unusable(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"devenv: {message} (fix: {hint})")


@pytest.fixture(scope="session")
def _devenv_session(request: pytest.FixtureRequest) -> Iterator[_Session]:
    from devenv.errors import DevenvError

    try:
        session = _attach(request.config)
    except DevenvError as exc:
        pytest.fail(f"devenv: {exc.one_line()}", pytrace=False)
    except _Unusable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def devenv_stack(_devenv_session: _Session) -> DevenvStack:
    """The project's running stack: attached when it runs as configured, else brought up
    with `--devenv-up`; its database URL, S3 endpoint, bucket and keys, and backend URL."""
    return _devenv_session.stack


@pytest.fixture
def devenv_database(_devenv_session: _Session) -> Iterator[str]:
    """The URL of a database of this test's own, cloned from the golden state, dropped after
    (in the background; a session waits for its drops before it ends)."""
    from devenv.errors import DevenvError
    from devenv.snapshot.pg import with_database

    session = _local(_devenv_session, "devenv_database")
    try:
        name = session.take_database()
    except DevenvError as exc:
        pytest.fail(f"devenv: {exc.one_line()}", pytrace=False)
    try:
        yield with_database(session.stack.database_url, name)
    finally:
        session.release_database(name)


@pytest.fixture
def devenv_bucket_prefix(_devenv_session: _Session) -> Iterator[str]:
    """An object-key prefix of this test's own (`.devenv-test/<owner>_<n>/`), emptied after."""
    from devenv.snapshot.model import TEST_PREFIX

    session = _local(_devenv_session, "devenv_bucket_prefix")
    prefix = f"{TEST_PREFIX}{session.owner}_{next(session.counter)}/"
    try:
        yield prefix
    finally:
        session.bucket().delete_prefix(prefix)


def _local(session: _Session, fixture: str) -> _Session:
    if not session.golden_db:
        pytest.fail(
            f"devenv: {fixture} needs a local postgres and object store; this profile binds "
            "an external provider, which devenv never clones or cleans",
            pytrace=False,
        )
    return session
