"""Snapshot use cases: save, restore, reset, list, rm, and the golden state taken after `up`.

Mechanism (measured on a 107 MB database and 200 objects, see bench/): the database is copied
inside Postgres with `CREATE DATABASE ... TEMPLATE` (0.09 s with FILE_COPY for 107 MB, 35 ms
for a small one), sealed as a template nobody may connect to, and restored by cloning it under
a new name and swapping two names in one transaction, so the previous database stays whole
until the swap commits. Objects go through the S3 API into a content-addressed store under the
machine cache. Stopping Postgres to copy its data directory would cost a container stop and
start (about 0.5 s) plus a copy of the whole cluster, and could not keep the old data live.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devenv.errors import ConfigError, DevenvError, ReadinessError, RefusedError
from devenv.snapshot.model import (
    GOLDEN,
    TEMP_DB_PREFIX,
    Manifest,
    ObjectEntry,
    check_name,
    clone_strategy,
    database_name,
    refusal,
)
from devenv.snapshot.store import Store

if TYPE_CHECKING:
    from devenv.runtime.base import Observed, ObservedContainer, Progress, Runtime
    from devenv.snapshot.pg import Admin
    from devenv.stack import Options, Stack

DATA_SERVICES = ("postgres", "objectstore")


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
    """The resolved stack, the engine, and what runs now."""

    stack: Stack
    rt: Runtime
    observed: Observed
    store: Store

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
        return self.observed.container("backend")

    def admin(self) -> Admin:
        from devenv.snapshot.pg import Admin

        return Admin(self.database_url)


def refuse_external(stack: Stack, action: str) -> None:
    """Snapshots hold the stand-ins' data only: an external provider is never read or written."""
    for service in DATA_SERVICES:
        binding = stack.profile.binding(service)
        if binding.provider == "external":
            kind = "protected " if binding.protected else ""
            raise RefusedError(
                f"{action}: {service} is a {kind}external provider in profile "
                f"{stack.profile.name}; devenv snapshots and restores only the local stand-ins",
                hint="use a profile whose postgres and objectstore are local (e.g. --profile "
                "local); nothing was read or changed",
            )


def target(options: Options, action: str, *, runtime: Runtime | None = None) -> Target:
    from devenv.stack import resolve_stack

    stack = resolve_stack(options, settle_ports=False)
    refuse_external(stack, action)
    rt = runtime or _docker()
    return Target(stack, rt, rt.observe(stack.name), Store(stack.name))


def _docker() -> Runtime:
    from devenv.runtime.docker import DockerRuntime

    return DockerRuntime()


def _require_running(t: Target, action: str) -> None:
    for service in DATA_SERVICES:
        found = t.observed.container(service)
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
    """Databases of a save or restore whose process died midway (the project lock is held, so
    none is in flight)."""
    for name in pg.databases(TEMP_DB_PREFIX):
        pg.drop(name)


# --- save --------------------------------------------------------------------------------


def save(
    options: Options,
    name: str,
    *,
    force: bool = False,
    progress: Progress = _quiet,
    timeout: float = 60.0,
    runtime: Runtime | None = None,
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
    with project_lock(options.root, options.project, notify=progress):
        t = target(options, f"snapshot save {name}", runtime=runtime)
        _require_running(t, f"snapshot save {name}")
        existing = t.store.load(name)
        if existing is not None and not force and _intact(t, existing):
            raise RefusedError(
                f"snapshot {name} of project {t.stack.name} exists (taken {existing.created_at})",
                hint="add --force to replace it, or choose another name",
            )
        return take(t, name, live=False, progress=progress, timeout=timeout)


def _intact(t: Target, manifest: Manifest) -> bool:
    with t.admin() as pg:
        return pg.comment(manifest.database) == manifest.token


def take(
    t: Target, name: str, *, live: bool, progress: Progress, timeout: float = 60.0
) -> SaveResult:
    """Copy the database and the bucket into snapshot `name`, replacing any of that name only
    once the new one is complete.

    `live`: leave the backend running (the golden state right after `up`, when nothing uses the
    stack yet); its pooled sessions are ended for the copy and it reconnects.
    """
    from devenv.snapshot.pg import read_applied_rows

    started = time.monotonic()
    token = secrets.token_hex(6)
    temp = f"{TEMP_DB_PREFIX}{token}_new"
    backend = None if live else t.backend()
    with t.store.locked(), t.admin() as pg:
        with pg.step("preparing the snapshot"):
            _drop_leftovers(pg)
            major, version = pg.server_major(), pg.server_version()
            size = pg.size(t.database)
        applied = read_applied_rows(t.database_url)
        stopped = backend is not None and backend.state == "running"
        if stopped:
            progress("backend: stopping while the snapshot is taken")
        try:
            entries, closed = _copy(t, pg, temp, clone_strategy(size, major), stop=stopped)
            with pg.step("sealing the snapshot database"):
                pg.seal(temp, token)
        except BaseException:
            _discard(pg, temp)
            raise
        finally:
            if stopped and backend is not None:
                t.rt.start(backend.id, service="backend")
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
            project=t.stack.name,
            token=token,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            database=final,
            source_database=t.database,
            pg_major=major,
            pg_version=version,
            migrations=tuple(applied),
            backend_source=_backend_source(t.stack),
            backend_image=_backend_image(t),
            database_bytes=db_bytes,
            bucket=t.stack.endpoints.storage.bucket,
            objects=tuple(entries),
        )
        t.store.write(manifest)
        t.store.gc()
    if closed:
        progress(f"postgres: ended {closed} other session(s) on {t.database} for the copy")
    if stopped:
        wait_ready(t, ("backend",), timeout=timeout, done=f"snapshot {name} was saved; ")
    return SaveResult(manifest, replaced, closed, time.monotonic() - started)


def _copy(
    t: Target, pg: Admin, temp: str, strategy: str | None, *, stop: bool
) -> tuple[list[ObjectEntry], int]:
    """The bucket into the store while Postgres copies the database into `temp` (nobody may be
    connected to it meanwhile); the backend stopped first when `stop`."""
    from devenv.snapshot.s3 import Bucket

    backend = t.backend()
    if stop and backend is not None:
        t.rt.stop(backend.id, timeout=10)
    storage = t.stack.endpoints.storage
    with ThreadPoolExecutor(max_workers=1) as pool:
        objects = pool.submit(lambda: Bucket(storage).dump(t.store))
        with pg.step(f"copying database {t.database}"):
            closed = pg.close_connections(t.database)
            try:
                pg.clone(t.database, temp, strategy=strategy)
            finally:
                pg.allow_connections(t.database, True)
        return objects.result(), closed


def _backend_source(stack: Stack) -> str:
    if not stack.local("backend"):
        return ""
    from devenv.execute import migration_source

    try:
        known, _ = migration_source(stack)
    except ConfigError:
        return ""
    return str(known.source) if known is not None else ""


def _backend_image(t: Target) -> str:
    found = t.backend()
    return found.image if found is not None else ""


# --- restore -----------------------------------------------------------------------------


def restore(
    options: Options,
    name: str,
    *,
    progress: Progress = _quiet,
    timeout: float = 60.0,
    runtime: Runtime | None = None,
) -> RestoreResult:
    from devenv.state import project_lock

    check_name(name)
    action = "reset" if name == GOLDEN else f"snapshot restore {name}"
    with project_lock(options.root, options.project, notify=progress):
        t = target(options, action, runtime=runtime)
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
                t.rt.start(backend.id, service="backend")
    ready = wait_ready(
        t, ("postgres", "objectstore", "backend"), timeout=timeout, done="the data was restored; "
    )
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
    with ThreadPoolExecutor(max_workers=2) as pool:
        client = pool.submit(Bucket, t.stack.endpoints.storage)  # boto3 loads meanwhile
        cloned = pool.submit(pg.clone, manifest.database, incoming, strategy=strategy)
        try:
            if stop and backend is not None:
                t.rt.stop(backend.id, timeout=10)
            try:
                written, deleted = client.result().restore(t.store, manifest.objects)
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
    known = None
    if t.stack.local("backend"):
        from devenv.execute import migration_source

        known, _ = migration_source(t.stack)
    reason = refusal(manifest, pg_major=major, known=known)
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
    """The same failure, saying what state it leaves behind."""
    if not isinstance(exc, DevenvError):
        return exc
    left = "the previous database is in place"
    if bucket:
        left += "; the bucket may be partly restored"
    error = DevenvError(
        f"restore failed while {doing}: {exc.message}; {left}",
        hint="fix the cause and run the restore again (it is safe to repeat)",
    )
    error.exit_code, error.kind = exc.exit_code, exc.kind
    return error


def wait_ready(
    t: Target, services: Sequence[str], *, timeout: float, done: str = ""
) -> tuple[str, ...]:
    """Every service's readiness probe, in parallel: SQL, the S3 round trip, backend /health.
    A backend container that exits meanwhile ends the wait at once."""
    from devenv.config.secrets import redact
    from devenv.execute import probe_for
    from devenv.probes.waiting import wait_ready as wait

    backend = t.backend()

    def crashed() -> str | None:
        if backend is None:
            return None
        state = t.rt.inspect_state(backend.id)
        if state is None:
            return "container disappeared"
        if state.state in ("exited", "dead"):
            return f"container exited with code {state.exit_code}"
        return None

    def one(service: str) -> str:
        probe = probe_for(t.stack, service)
        abort: Callable[[], str | None] | None = crashed if service == "backend" else None
        result = wait(probe, timeout=timeout, abort=abort)
        if not result.ok:
            secrets_ = t.stack.secrets()
            why = result.fatal or f"not ready after {timeout:.0f}s"
            raise ReadinessError(
                f"service {service}: {redact(why, secrets_)}; last error: "
                f"{redact(result.detail, secrets_)}",
                hint=f"{done}read `devenv logs {service}`, fix the cause, then `devenv up`",
            )
        return f"{service}: {result.detail} in {result.elapsed:.2f}s"

    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        return tuple(pool.map(one, services))


# --- reset, golden -----------------------------------------------------------------------


def reset(
    options: Options,
    *,
    golden_refresh: bool = False,
    progress: Progress = _quiet,
    timeout: float = 60.0,
    runtime: Runtime | None = None,
) -> RestoreResult | SaveResult:
    """Back to the golden state; with `golden_refresh`, retake the golden state instead."""
    if not golden_refresh:
        return restore(options, GOLDEN, progress=progress, timeout=timeout, runtime=runtime)
    from devenv.state import project_lock

    with project_lock(options.root, options.project, notify=progress):
        t = target(options, "reset --golden-refresh", runtime=runtime)
        _require_running(t, "reset --golden-refresh")
        return take(t, GOLDEN, live=False, progress=progress, timeout=timeout)


def golden_intact(t: Target) -> bool:
    manifest = t.store.load(GOLDEN)
    return manifest is not None and _intact(t, manifest)


def ensure_golden(t: Target, *, progress: Progress) -> bool:
    """Take the golden state now unless an intact one exists; True when it was taken.
    The caller holds the project lock."""
    if golden_intact(t):
        return False
    take(t, GOLDEN, live=True, progress=progress)
    return True


def after_up(stack: Stack, rt: Runtime, *, changed: bool, progress: Progress) -> None:
    """The golden state, taken after the first healthy `up` (migrated, seeded, bucket made).

    Called by `up` under the project lock; never fails it: a golden state that cannot be taken
    is a warning, and the next `up` tries again."""
    if not all(stack.local(s) for s in DATA_SERVICES):
        return
    store = Store(stack.name)
    if not changed and GOLDEN in store.names():
        return  # nothing was recreated since the golden state was checked
    try:
        t = Target(stack, rt, rt.observe(stack.name), store)
        if ensure_golden(t, progress=progress):
            progress("golden snapshot taken: `devenv reset` comes back to this state")
    except DevenvError as exc:
        progress(f"warning: golden snapshot not taken: {exc.message}")


# --- list, rm ----------------------------------------------------------------------------


def list_snapshots(options: Options) -> list[SnapshotRow]:
    """Every snapshot of the project with whether it can be restored here now."""
    from devenv.stack import resolve_stack

    stack = resolve_stack(options, settle_ports=False)
    store = Store(stack.name)
    manifests = [m for m in (store.load(n) for n in store.names()) if m is not None]
    if not manifests:
        return []
    comments: dict[str, str | None] | None = None
    why = ""
    if all(stack.local(s) for s in DATA_SERVICES):
        try:
            from devenv.snapshot.pg import Admin

            with Admin(stack.endpoints.database_url, connect_timeout=2) as pg:
                comments = {m.database: pg.comment(m.database) for m in manifests}
        except DevenvError:
            why = "unchecked: postgres is not running"
    else:
        why = "unchecked: an external provider is in play"
    rows = []
    for m in sorted(manifests, key=lambda m: (not m.golden, m.created_at, m.name)):
        if comments is None:
            state = why
        elif comments.get(m.database) == m.token:
            state = "ok"
        else:
            state = "stale: its database is gone"
        rows.append(SnapshotRow(m, state))
    return rows


def remove(options: Options, name: str, *, runtime: Runtime | None = None) -> Manifest:
    from devenv.state import project_lock

    check_name(name)
    with project_lock(options.root, options.project):
        t = target(options, f"snapshot rm {name}", runtime=runtime)
        manifest = t.store.load(name)
        if manifest is None:
            raise _unknown(name, t.stack.name)
        pg = t.observed.container("postgres")
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
    return any(t.observed.volume(f"{t.stack.name}_{m.volume}") for m in mounts)
