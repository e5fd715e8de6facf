"""Snapshot use cases: save, restore, reset, list, rm, and taking the golden state.

Mechanism (measured on a 107 MB database and 200 objects, see bench/): the database is copied
inside Postgres with `CREATE DATABASE ... TEMPLATE` (0.09 s with FILE_COPY for 107 MB, 35 ms
for a small one), sealed as a template nobody may connect to, and restored by cloning it under
a new name and swapping two names in one transaction, so the previous database stays whole
until the swap commits. Objects go through the S3 API into a content-addressed store under the
machine cache. Stopping Postgres to copy its data directory would cost a container stop and
start (about 0.5 s) plus a copy of the whole cluster, and could not keep the old data live.

The golden state is not taken here on its own initiative: `up` plans it (a `snapshot-golden`
step) and its handler calls `take_golden` through the stack's clients.
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devenv.app import REAL, Adapters
from devenv.config.load import Config, Options, load_config
from devenv.errors import ConfigError, DevenvError, ReadinessError, RefusedError
from devenv.snapshot.model import (
    GOLDEN,
    SNAPSHOT_DB_PREFIX,
    TEMP_DB_PREFIX,
    Manifest,
    ObjectEntry,
    Provenance,
    check_name,
    clone_strategy,
    database_name,
    refusal,
)
from devenv.snapshot.store import Store

if TYPE_CHECKING:
    from devenv.config.secrets import Secrets
    from devenv.migrations import MigrationSet
    from devenv.probes.clients import Clients
    from devenv.runtime.base import Observed, ObservedContainer, Progress, Runtime
    from devenv.snapshot.pg import Admin
    from devenv.stack import Stack

DATA_SERVICES = ("postgres", "objectstore")
STACK = ("postgres", "objectstore", "backend")


def _quiet(_: str) -> None:
    return None


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveResult:
    manifest: Manifest
    replaced: bool
    closed: int  # other sessions on the database that the copy had to end
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    written: int  # objects written back
    deleted: int  # objects the snapshot did not hold
    closed: int
    ready: tuple[str, ...]  # what each readiness probe said once it passed
    seconds: float


@dataclass(frozen=True)
class SnapshotRow:
    manifest: Manifest
    state: str  # "ok", or why it cannot be restored here

    def to_json(self) -> dict[str, Any]:
        data = self.manifest.to_json()
        data["bucket"] = {k: v for k, v in data["bucket"].items() if k != "objects"}
        data["state"] = self.state
        return data


# --- the stack a snapshot acts on --------------------------------------------------------


@dataclass
class Target:
    """The stack as it runs now, the engine as observed, its clients and the store."""

    stack: Stack
    runtime: Runtime
    engine: Observed
    store: Store
    clients: Clients

    @property
    def database_url(self) -> str:
        return self.stack.endpoints.database_url

    @property
    def database(self) -> str:
        from devenv.snapshot.pg import database_of

        return database_of(self.database_url)

    def backend(self) -> ObservedContainer | None:
        if not self.stack.local("backend"):
            return None
        return self.engine.container("backend")

    def admin(self) -> Admin:
        from devenv.snapshot.pg import Admin

        return Admin(self.database_url)


def refuse_external(config: Config, action: str) -> None:
    """Snapshots hold the stand-ins' data only: an external provider is never read or written."""
    for service in DATA_SERVICES:
        binding = config.profile.binding(service)
        if binding.provider == "external":
            kind = "protected " if binding.protected else ""
            raise RefusedError(
                f"{action}: {service} is a {kind}external provider in profile "
                f"{config.profile.name}; devenv snapshots and restores only the local stand-ins",
                hint="use a profile whose postgres and objectstore are local (e.g. --profile "
                "local); nothing was read or changed",
            )


def target(options: Options, action: str, *, adapters: Adapters, secrets: Secrets | None) -> Target:
    """Refuse an external provider before anything is asked of the engine; then observe."""
    from devenv.observe import current

    config = load_config(options)
    refuse_external(config, action)
    runtime = adapters.runtime()
    engine, stack = current(config, runtime)
    if secrets is not None:
        secrets.add(*stack.secrets())
    return Target(stack, runtime, engine, Store(stack.name), adapters.clients(stack))


def known_migrations(config: Config) -> MigrationSet | None:
    """The migrations the local backend's source accepts (None: unknown or external)."""
    if not config.local("backend"):
        return None
    source = config.migration_source()
    if source.directory is None or source.source is None:
        return None
    from devenv.migrations import read_migration_set

    return read_migration_set(source.directory, source=source.source, display=source.display)


def provenance(config: Config, backend_image: str) -> Provenance:
    source = config.migration_source().source if config.local("backend") else None
    return Provenance(str(source) if source else "", backend_image)


def _require_running(t: Target, action: str) -> None:
    for service in DATA_SERVICES:
        found = t.engine.container(service)
        if found is None or found.state != "running":
            state = found.state if found else "absent"
            raise ReadinessError(
                f"{action}: {service} of project {t.stack.name} is not running ({state})",
                hint="`devenv up` starts the stack; nothing was changed",
            )


def _unknown(name: str, project: str) -> ConfigError:
    if name == GOLDEN:
        return ConfigError(
            f"project {project} has no golden snapshot yet",
            key="golden",
            hint="`devenv up` takes it after the first healthy start; `devenv reset "
            "--golden-refresh` takes it from the current state",
        )
    return ConfigError(
        f"project {project} has no snapshot {name!r}",
        key="NAME",
        hint="`devenv snapshot list` shows the snapshots",
    )


def _discard(pg: Admin, name: str) -> None:
    """Drop an unfinished copy on the way out of a failure; the next save or restore drops
    it when even that fails (the failure being reported is the first one)."""
    with contextlib.suppress(DevenvError), pg.step(f"dropping {name}"):
        pg.drop(name)


def _drop_leftovers(pg: Admin) -> None:
    """Databases of a save or restore whose process died midway (the store lock is held, so
    none is in flight)."""
    for name in pg.databases(TEMP_DB_PREFIX):
        pg.drop(name)


# --- readiness ---------------------------------------------------------------------------


def wait_ready(
    t: Target,
    services: Sequence[str],
    *,
    timeout: float,
    progress: Progress = _quiet,
    done: str = "",
) -> tuple[str, ...]:
    """Every service's readiness probe, in parallel, as `up` waits for them (the same steps
    and handlers: a backend container that exits ends the wait at once, with its last log
    lines). `done` says in the hint what was already done when a probe fails."""
    from devenv.execute import Executor, failures
    from devenv.handlers import Handlers
    from devenv.observe import Observation
    from devenv.plan import Plan, Step

    steps = tuple(Step("wait-ready", s, "probe it again") for s in services)
    cancel = threading.Event()
    handlers = Handlers(
        Plan(steps, t.stack),
        Observation(engine=t.engine),
        t.runtime,
        t.clients,
        progress=progress,
        timeout=timeout,
        cancel=cancel,
    )
    outcomes = Executor(steps, handlers.table(), cancel=cancel).run()
    errors = failures(outcomes)
    if errors:
        error = copy.copy(errors[0])
        error.hint = f"{done}{error.hint or ''}"
        raise error
    return tuple(f"{o.step.target}: {o.detail}" for o in outcomes)


# --- save --------------------------------------------------------------------------------


def save(
    options: Options,
    name: str,
    *,
    force: bool = False,
    progress: Progress = _quiet,
    timeout: float = 60.0,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> SaveResult:
    """Save the project's database and bucket under `name`, the backend stopped meanwhile so
    that the two agree."""
    from devenv.state import project_lock

    check_name(name)
    if name == GOLDEN:
        raise RefusedError(
            "the golden snapshot is taken by devenv itself",
            hint="`devenv reset --golden-refresh` retakes it from the current state",
        )
    action = f"snapshot save {name}"
    with project_lock(options.root, options.project, notify=progress):
        t = target(options, action, adapters=adapters, secrets=secrets)
        _require_running(t, action)
        existing = t.store.load(name)
        if existing is not None and not force and _intact(t, existing):
            raise RefusedError(
                f"snapshot {name} of project {t.stack.name} exists (taken {existing.created_at})",
                hint="add --force to replace it, or choose another name",
            )
        return _save_stopped(t, name, progress=progress, timeout=timeout)


def _intact(t: Target, manifest: Manifest) -> bool:
    with t.admin() as pg:
        return pg.comment(manifest.database) == manifest.token


def _save_stopped(t: Target, name: str, *, progress: Progress, timeout: float) -> SaveResult:
    """Take snapshot `name` with the backend stopped for the copy, then wait until it answers."""
    started = time.monotonic()
    backend = t.backend()
    running = backend is not None and backend.state == "running"
    stop: Callable[[], None] | None = None
    start: Callable[[], None] | None = None
    if backend is not None and running:
        progress("backend: stopping while the snapshot is taken")
        cid = backend.id
        stop = lambda: t.runtime.stop(cid, timeout=10)  # noqa: E731
        start = lambda: t.runtime.start(cid, service="backend")  # noqa: E731
    made = provenance(t.stack.config, backend.image if backend else "")
    manifest, replaced, closed = take(
        t.stack, t.store, name, provenance=made, stop=stop, start=start, progress=progress
    )
    if running:
        wait_ready(
            t, ("backend",), timeout=timeout, progress=progress, done=f"snapshot {name} was saved; "
        )
    return SaveResult(manifest, replaced, closed, time.monotonic() - started)


def take_golden(stack: Stack, made: Provenance, *, progress: Progress = _quiet) -> SaveResult:
    """The golden state, right after a healthy `up` (migrated, seeded, bucket made): copied
    live, the backend left running (its pooled sessions are ended for the copy and it
    reconnects). The caller holds the project lock."""
    started = time.monotonic()
    manifest, replaced, closed = take(
        stack, Store(stack.name), GOLDEN, provenance=made, progress=progress
    )
    return SaveResult(manifest, replaced, closed, time.monotonic() - started)


def take(
    stack: Stack,
    store: Store,
    name: str,
    *,
    provenance: Provenance,
    stop: Callable[[], None] | None = None,
    start: Callable[[], None] | None = None,
    progress: Progress = _quiet,
) -> tuple[Manifest, bool, int]:
    """Copy the database and the bucket into snapshot `name`, replacing any of that name only
    once the new one is complete. `stop` runs before the copy and `start` right after it
    (also when it fails). Returns the manifest, whether one was replaced, and how many other
    sessions the copy ended."""
    from devenv.snapshot.pg import Admin, database_of, read_applied_rows

    url = stack.endpoints.database_url
    database = database_of(url)
    token = secrets.token_hex(6)
    temp = f"{TEMP_DB_PREFIX}{token}_new"
    with store.locked(), Admin(url) as pg:
        with pg.step("preparing the snapshot"):
            _drop_leftovers(pg)
            major, version = pg.server_major(), pg.server_version()
            size = pg.size(database)
        applied = read_applied_rows(url)
        try:
            entries, closed = _copy(stack, store, pg, temp, clone_strategy(size, major), stop=stop)
            with pg.step("sealing the snapshot database"):
                pg.seal(temp, token)
        except BaseException:
            _discard(pg, temp)
            raise
        finally:
            if start is not None:
                start()
        final = database_name(name)
        with pg.step(f"storing snapshot database {final}"):
            replaced = pg.exists(final)
            if replaced:
                old = f"{TEMP_DB_PREFIX}{token}_old"
                pg.swap(final, temp, old)
                pg.drop(old)
            else:
                pg.rename(temp, final)
            db_bytes = pg.size(final)
        manifest = Manifest(
            name=name,
            project=stack.name,
            token=token,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            database=final,
            source_database=database,
            pg_major=major,
            pg_version=version,
            migrations=tuple(applied),
            backend_source=provenance.backend_source,
            backend_image=provenance.backend_image,
            database_bytes=db_bytes,
            bucket=stack.endpoints.storage.bucket,
            objects=tuple(entries),
        )
        store.write(manifest)
        store.gc()
    if closed:
        progress(f"postgres: ended {closed} other session(s) on {database} for the copy")
    return manifest, replaced, closed


def _copy(
    stack: Stack,
    store: Store,
    pg: Admin,
    temp: str,
    strategy: str | None,
    *,
    stop: Callable[[], None] | None,
) -> tuple[list[ObjectEntry], int]:
    """The bucket into the store while Postgres copies the database into `temp` (nobody may be
    connected to it meanwhile); `stop` first."""
    from devenv.snapshot.pg import database_of
    from devenv.snapshot.s3 import Bucket

    if stop is not None:
        stop()
    database = database_of(stack.endpoints.database_url)
    with Bucket(stack.endpoints.storage) as bucket, ThreadPoolExecutor(max_workers=1) as pool:
        objects = pool.submit(bucket.dump, store)
        with pg.step(f"copying database {database}"):
            closed = pg.close_connections(database)
            try:
                pg.clone(database, temp, strategy=strategy)
            finally:
                pg.allow_connections(database, True)
        return objects.result(), closed


# --- restore -----------------------------------------------------------------------------


def restore(
    options: Options,
    name: str,
    *,
    progress: Progress = _quiet,
    timeout: float = 60.0,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> RestoreResult:
    from devenv.state import project_lock

    check_name(name)
    action = "reset" if name == GOLDEN else f"snapshot restore {name}"
    with project_lock(options.root, options.project, notify=progress):
        t = target(options, action, adapters=adapters, secrets=secrets)
        manifest = t.store.load(name)
        if manifest is None:
            raise _unknown(name, t.stack.name)
        _require_running(t, action)
        return put_back(t, manifest, progress=progress, timeout=timeout)


def put_back(t: Target, manifest: Manifest, *, progress: Progress, timeout: float) -> RestoreResult:
    """Restore `manifest` into the running stack and return once every probe passes.

    Nothing changes before the snapshot is judged compatible and its files intact. The
    database is cloned under a new name while the backend still runs; the backend is stopped;
    the bucket is written back; then the two database names are swapped in one transaction.
    Any failure before the swap leaves the previous database in place, and says so."""
    started = time.monotonic()
    with t.store.locked(), t.admin() as pg:
        with pg.step("checking the snapshot"):
            _drop_leftovers(pg)
            if pg.comment(manifest.database) != manifest.token:
                raise RefusedError(
                    f"snapshot {manifest.name}: its database {manifest.database} is gone or "
                    "belongs to another save (were the project's volumes deleted?)",
                    hint=f"`devenv snapshot rm {manifest.name}`; nothing was changed",
                )
            major = pg.server_major()
        _judge(t, manifest, major)
        _verify_objects(t.store, manifest)
        backend = t.backend()
        stopped = backend is not None and backend.state == "running"
        if stopped:
            progress("backend: stopping for the restore")
        try:
            written, deleted, closed = _replace(t, pg, manifest, major, stop=stopped)
        finally:
            if backend is not None:  # started even when it was down: restore ends ready
                t.runtime.start(backend.id, service="backend")
    ready = wait_ready(t, STACK, timeout=timeout, progress=progress, done="the data was restored; ")
    return RestoreResult(manifest, written, deleted, closed, ready, time.monotonic() - started)


def _replace(
    t: Target, pg: Admin, manifest: Manifest, major: int, *, stop: bool
) -> tuple[int, int, int]:
    """Clone the snapshot database (while the backend still runs), stop the backend, write the
    bucket back, swap the database names. Returns (written, deleted, sessions ended)."""
    from devenv.snapshot.s3 import Bucket

    token = secrets.token_hex(6)
    incoming, old = f"{TEMP_DB_PREFIX}{token}_in", f"{TEMP_DB_PREFIX}{token}_old"
    strategy = clone_strategy(manifest.database_bytes, major)
    backend = t.backend()
    with Bucket(t.stack.endpoints.storage) as bucket, ThreadPoolExecutor(max_workers=1) as pool:
        cloned = pool.submit(pg.clone, manifest.database, incoming, strategy=strategy)
        try:
            if stop and backend is not None:
                t.runtime.stop(backend.id, timeout=10)
            try:
                written, deleted = bucket.restore(t.store, manifest.objects)
            except BaseException as exc:
                raise _failed(exc, "writing the bucket back", bucket=True) from exc
            try:
                with pg.step(f"cloning snapshot database {manifest.database}"):
                    cloned.result()
                with pg.step(f"swapping in the restored database {t.database}"):
                    closed = pg.close_connections(t.database)
                    try:
                        pg.swap(t.database, incoming, old)
                    except BaseException:
                        pg.allow_connections(t.database, True)
                        raise
            except BaseException as exc:
                raise _failed(exc, "replacing the database", bucket=True) from exc
        except BaseException:
            cloned.exception()  # the copy must end before it can be dropped
            _discard(pg, incoming)
            raise
    with pg.step("dropping the replaced database"):
        pg.drop(old)
    return written, deleted, closed


def _judge(t: Target, manifest: Manifest, major: int) -> None:
    reason = refusal(manifest, pg_major=major, known=known_migrations(t.stack.config))
    if reason:
        raise RefusedError(
            reason,
            hint="restore a snapshot taken from this backend source and Postgres major, or "
            "retake it; nothing was changed",
        )


def _verify_objects(store: Store, manifest: Manifest) -> None:
    for entry in manifest.objects:
        try:
            store.read_object(entry.sha256)
        except (OSError, ValueError) as exc:
            raise RefusedError(
                f"snapshot {manifest.name} is damaged: object {entry.key}: {exc}",
                hint=f"retake it, or `devenv snapshot rm {manifest.name}`; nothing was changed",
            ) from exc


def _failed(exc: BaseException, doing: str, *, bucket: bool) -> BaseException:
    """The same failure (same kind, same exit code), saying what state it leaves behind."""
    if not isinstance(exc, DevenvError):
        return exc
    left = "the previous database is in place"
    if bucket:
        left += "; the bucket may be partly restored"
    error = copy.copy(exc)
    error.message = f"restore failed while {doing}: {exc.message}; {left}"
    error.args = (error.message,)
    error.hint = "fix the cause and run the restore again (it is safe to repeat)"
    return error


# --- reset -------------------------------------------------------------------------------


def reset(
    options: Options,
    *,
    golden_refresh: bool = False,
    progress: Progress = _quiet,
    timeout: float = 60.0,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> RestoreResult | SaveResult:
    """Back to the golden state; with `golden_refresh`, retake the golden state instead."""
    if not golden_refresh:
        return restore(
            options, GOLDEN, progress=progress, timeout=timeout, adapters=adapters, secrets=secrets
        )
    from devenv.state import project_lock

    action = "reset --golden-refresh"
    with project_lock(options.root, options.project, notify=progress):
        t = target(options, action, adapters=adapters, secrets=secrets)
        _require_running(t, action)
        return _save_stopped(t, GOLDEN, progress=progress, timeout=timeout)


# --- list, rm ----------------------------------------------------------------------------


def list_snapshots(
    options: Options, *, adapters: Adapters = REAL, secrets: Secrets | None = None
) -> list[SnapshotRow]:
    """Every snapshot of the project with whether it can be restored here now."""
    from devenv.observe import current
    from devenv.probes.base import ProbeFailure
    from devenv.snapshot.pg import tokens

    config = load_config(options)
    store = Store(config.name)
    manifests = [m for m in (store.load(n) for n in store.names()) if m is not None]
    if not manifests:
        return []
    found: dict[str, str | None] | None = None
    why = "unchecked: an external provider is in play"
    if all(config.local(s) for s in DATA_SERVICES):
        engine, stack = current(config, adapters.runtime())
        if secrets is not None:
            secrets.add(*stack.secrets())
        pg = engine.container("postgres")
        why = "unchecked: postgres is not running"
        if pg is not None and pg.state == "running":
            try:
                found = tokens(stack.endpoints.database_url, SNAPSHOT_DB_PREFIX)
            except ProbeFailure as exc:
                why = f"unchecked: {exc.message}"
    rows = []
    for m in sorted(manifests, key=lambda m: (not m.golden, m.created_at, m.name)):
        if found is None:
            state = why
        elif found.get(m.database) == m.token:
            state = "ok"
        else:
            state = "stale: its database is gone"
        rows.append(SnapshotRow(m, state))
    return rows


def remove(
    options: Options, name: str, *, adapters: Adapters = REAL, secrets: Secrets | None = None
) -> Manifest:
    from devenv.state import project_lock

    check_name(name)
    with project_lock(options.root, options.project):
        t = target(options, f"snapshot rm {name}", adapters=adapters, secrets=secrets)
        manifest = t.store.load(name)
        if manifest is None:
            raise _unknown(name, t.stack.name)
        pg = t.engine.container("postgres")
        if pg is not None and pg.state == "running":
            with t.store.locked(), t.admin() as admin, admin.step(f"dropping {manifest.database}"):
                if admin.comment(manifest.database) == manifest.token:
                    admin.drop(manifest.database)
        elif _pg_volume_exists(t):
            raise ReadinessError(
                f"snapshot rm {name}: postgres of project {t.stack.name} is not running, so "
                f"database {manifest.database} cannot be dropped",
                hint="`devenv up`, then remove it again; nothing was changed",
            )
        with t.store.locked():
            t.store.remove(name)
            t.store.gc()
        return manifest


def _pg_volume_exists(t: Target) -> bool:
    mounts = t.stack.project.service("postgres").volumes
    return any(t.engine.volume(f"{t.stack.name}_{m.volume}") for m in mounts)
