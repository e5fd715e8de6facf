"""pytest plugin `devenv`: the project's stack, a database per test cloned from the golden
state, and an object-key prefix per test; safe under pytest-xdist, clean after a crash.

Fixtures: `devenv_stack` (session), `devenv_database` and `devenv_bucket_prefix` (function).
Options: `--devenv-up`, `--devenv-project`, `--devenv-profile`.

What a test creates is named after the run (each pytest process, each xdist worker) that owns
it: a random owner token. The run holds a Postgres session-level advisory lock named by that
token on a connection of its own for as long as it lives; the server releases it the moment
the run's connection ends, however the run ended (Ctrl-C, SIGKILL, a crash, a lost machine).
Every session drops, when it starts, the databases and prefixes of owners whose lock it can
take: a run in another PID namespace (a devcontainer, a CI job container) or on another
machine holds its lock like any other, and a killed one leaves nothing behind once the next
starts. Process ids are never consulted: they mean nothing across namespaces.

Nothing here shows a secret in its repr: DevenvStack masks its credentials and URLs' passwords,
and the database URLs handed out are strings whose repr is masked too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from devenv.config.load import Options
    from devenv.snapshot.pg import Admin
    from devenv.snapshot.s3 import Bucket

CLONE_AHEAD = 2  # clones in flight beside the one a test takes; two threads clone them
_OWNED_DB = re.compile(r"devenv_t_([0-9a-f]{8})_\d+")
_OWNED_PREFIX = re.compile(r"([0-9a-f]{8})_\d+/")
# The advisory-lock class (first key) of the plugin's owner locks: "dvnv" in ASCII, so that the
# second key, the owner token, cannot meet another application's single-key locks.
LOCK_CLASS = 0x64766E76


def new_owner() -> str:
    """A run's owner token: 32 random bits, as 8 hex digits (the second key of its lock)."""
    return secrets.token_hex(4)


def lock_key(owner: str) -> int:
    """The owner token as Postgres's signed int4."""
    value = int(owner, 16)
    return value - (1 << 32) if value >= 1 << 31 else value


def owned_database_owner(name: str) -> str | None:
    found = _OWNED_DB.fullmatch(name)
    return found[1] if found else None


def owned_prefix_owner(rest: str) -> str | None:
    found = _OWNED_PREFIX.fullmatch(rest)
    return found[1] if found else None


class SecretStr(str):
    """A string that is itself (connect with it, format it) but whose repr hides it: a URL
    keeps its shape with the password masked, anything else is `****`. pytest prints reprs
    in assertion failures, --showlocals and tracebacks."""

    __slots__ = ()

    def __repr__(self) -> str:
        from devenv.config.secrets import MASK, has_userinfo, mask_url

        return repr(mask_url(str(self)) if has_userinfo(self) else MASK)


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


@dataclass(frozen=True, repr=False)
class DevenvStack:
    """What a test needs to reach the stack (secrets included: tests use them; its repr masks
    every field whose name says secret and every URL's password)."""

    project: str
    database_url: str
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key: str
    s3_secret_key: str
    backend_url: str
    golden: bool  # whether per-test databases can be cloned (local Postgres and object store)

    def __repr__(self) -> str:
        from devenv.config.secrets import MASK, has_userinfo, mask_url, secret_name

        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and secret_name(f.name):
                value = MASK
            elif isinstance(value, str) and has_userinfo(value):
                value = mask_url(value)
            shown.append(
                f"{f.name}={str(value)!r}" if isinstance(value, str) else f"{f.name}={value!r}"
            )
        return f"DevenvStack({', '.join(shown)})"

    __str__ = __repr__


@dataclass(repr=False)
class _Session:
    """This process's share of the stack: its owner lock, an admin session, counters, the
    bucket client."""

    stack: DevenvStack
    options: Options
    golden_db: str = ""
    strategy: str | None = None
    owner: str = field(default_factory=new_owner)
    counter: Iterator[int] = field(default_factory=itertools.count)
    _claim: Admin | None = None  # holds the owner lock for the run's lifetime
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
    _claiming: threading.Lock = field(default_factory=threading.Lock)

    def __repr__(self) -> str:
        return f"_Session(project={self.stack.project!r}, owner={self.owner!r})"

    def admin(self) -> Admin:
        from devenv.snapshot.pg import Admin

        if self._admin is None or self._admin.conn.closed:
            self._admin = Admin(self.stack.database_url)
        return self._admin

    def claim(self) -> Admin:
        """The connection holding this run's owner lock (taken again if it was lost, under a
        new token when another run holds this one)."""
        import psycopg

        from devenv.snapshot.pg import Admin

        if self._claim is not None:
            try:
                self._claim.conn.execute("SELECT 1")  # alive: its session's lock is still ours
                return self._claim
            except psycopg.Error:
                self._claim.close()
        claim = Admin(self.stack.database_url)
        with claim.step("taking the test run's owner lock"):
            while not claim.conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, lock_key(self.owner))
            ).fetchone()[0]:  # type: ignore[index]
                self.owner = new_owner()  # 32 random bits met a live run's: draw again
        self._claim = claim
        return claim

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
        """Drop what runs that are gone left behind: the databases and prefixes of every owner
        whose lock this session can take (held while dropping, so that two sweeping runs never
        drop the same owner's at once); never a live run's, wherever it runs."""
        from devenv.snapshot.model import TEST_DB_PREFIX, TEST_PREFIX

        pg = self.claim()
        bucket = self.bucket()
        with pg.step("listing the databases of test runs"):
            databases: dict[str, list[str]] = {}
            for name in pg.databases(TEST_DB_PREFIX):
                owner = owned_database_owner(name)
                if owner is not None:
                    databases.setdefault(owner, []).append(name)
        prefixes: dict[str, list[str]] = {}
        for prefix in bucket.prefixes(TEST_PREFIX):
            owner = owned_prefix_owner(prefix[len(TEST_PREFIX) :])
            if owner is not None:
                prefixes.setdefault(owner, []).append(prefix)
        for owner in sorted((set(databases) | set(prefixes)) - {self.owner}):
            key = (LOCK_CLASS, lock_key(owner))
            with pg.step(f"dropping what finished test run {owner} left"):
                if not pg.conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:  # type: ignore[index]
                    continue  # its run holds it: alive
                try:
                    for name in databases.get(owner, []):
                        pg.drop(name)
                    for prefix in prefixes.get(owner, []):
                        bucket.delete_prefix(prefix)
                finally:
                    pg.conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

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
        with self._claiming:
            self.claim()  # a lost lock (the server restarted) is taken again before creating
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
        if self._claim is not None:
            self._claim.close()  # last: ends the owner lock once nothing of ours is left
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
            database_url=SecretStr(stack.endpoints.database_url),
            s3_endpoint=storage.endpoint,
            s3_bucket=storage.bucket,
            s3_region=storage.region,
            s3_access_key=SecretStr(storage.access_key),
            s3_secret_key=SecretStr(storage.secret_key),
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
        yield SecretStr(with_database(session.stack.database_url, name))
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
