"""The watch loop: saves in; a verified backend, or why the previous build keeps serving, out.

Two watchers (the checkout's trees recursively, its top-level files alone) feed one queue; the
main thread gathers saves (debounced), runs one cancellable cargo build at a time, and serves
each good build: the binary goes into the running backend container (no image), the container
restarts, `/health` is awaited with crash detection as `up` does, and the route contract runs.
Before the copy the project's serving record is cleared; after the restart it names the
container and the source its binary was built from, so that `devenv up` keeps the container.

A SIGINT or SIGTERM (the CLI raises Interrupted) ends the session wherever it lands: a build is
cancelled, the copy-restart-record block is finished first, a wait or the checks stop, and the
cycle is never reported (it is no failure of the change). The loop then says what it stopped.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.errors import DevenvError, Interrupted, ReadinessError
from devenv.watch.cargo import BuildResult, CargoBuild, workspace_packages
from devenv.watch.cycle import WATCH_FILE, Checks, Cycle, Outcome, files, watch_file_data
from devenv.watch.interrupts import PAUSE_ENV, Pause, held
from devenv.watch.paths import Debouncer, WatchSet

if TYPE_CHECKING:
    from devenv.checks.spec import Contract
    from devenv.config.load import Config
    from devenv.config.secrets import Secrets
    from devenv.migrations import AppliedMigration
    from devenv.probes.clients import Clients
    from devenv.runtime.base import Observed, Progress, Runtime
    from devenv.stack import Stack

WATCHER_STEP_MS = 20  # the watcher yields once the checkout was quiet this long
QUIET = 0.03  # more quiet before a batch of saves is built (both watchers' saves join)
LONGEST = 1.0  # a batch is built at the latest this long after its first save
IDLE = 1.0  # how long the loop sleeps with nothing to do (a save or a build wakes it)
STOP_TIMEOUT = 10  # seconds the backend gets to shut down gracefully on a restart


@dataclass(frozen=True)
class _Running:
    """The cycle whose build runs: what changed, which source it builds, what came before."""

    changed: tuple[str, ...]  # absolute paths
    identity: str  # the source fingerprint (the backend image identity) being built
    cancelled: int
    before: tuple[AppliedMigration, ...] | None  # rows when the source has pending ones


class Watcher:
    """One `devenv watch` session on a stack that is up."""

    def __init__(
        self,
        config: Config,
        stack: Stack,
        runtime: Runtime,
        clients: Clients,
        contract: Contract,
        *,
        profile: str,
        progress: Progress,
        report: Callable[[Cycle], None],
        secrets: Secrets,
        timeout: float,
    ) -> None:
        from devenv.images.build import cargo_target_dir
        from devenv.images.identity import workspace_root

        build = config.backend_build()
        assert build is not None  # refused before: the backend is built from a checkout
        self.config, self.stack, self.runtime, self.clients = config, stack, runtime, clients
        self.contract, self.profile, self.build = contract, profile, build
        self.progress, self.report, self.secrets, self.timeout = progress, report, secrets, timeout
        self.root = config.options.root
        workspace = workspace_root(build.context)
        roots = (workspace, *([build.source] if build.source != workspace else []))
        migrations = config.migration_source().directory
        extra: tuple[Path, ...] = ()
        if migrations is not None and not any(
            migrations.resolve().is_relative_to(r) for r in roots
        ):
            extra = (migrations.resolve(),)
        self.paths = WatchSet(roots, extra)
        self.target = cargo_target_dir(build.context, self.root / "backend")
        self.events: queue.Queue[set[str] | CargoBuild | str] = queue.Queue()
        self.debouncer = Debouncer(QUIET, LONGEST)
        self.stopping = threading.Event()
        self.job: CargoBuild | None = None
        self.running: _Running | None = None  # None while the warm-up build runs
        self.carried = 0  # builds cancelled since the last cycle ended
        self.current: tuple[int, int] | None = None  # (mtime, size) of the build that serves
        self.cycles = 0
        self.serving: str | None = None  # the source this watch last put into the container
        self.command: list[str] = []
        self._keep_dir: Path | None = None
        self.at: tuple[str, _Running] | None = None  # where the cycle in progress is
        self.pause = Pause(config.options.environ.get(PAUSE_ENV) or None, progress)

    # --- the session ---------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Watch until `stop` is set or an Interrupted (SIGINT, SIGTERM) ends it, which is
        raised on once said; always cleans up: the watchers and any build stop, watch.json goes.
        The stack stays as it is."""
        from devenv.images.build import cargo_command, cargo_locked

        self.pause.install()
        self.target.mkdir(parents=True, exist_ok=True)
        self._keep_dir = Path(tempfile.mkdtemp(prefix="devenv-watch-", dir=self.target))
        own = []
        if self.profile == "fast":
            own = workspace_packages(self.build.context, self._env, self.build.package)
        locked = cargo_locked(self.build, self.progress)
        self.command = cargo_command(
            self.build, locked=locked, profile=self.profile, unoptimized=own
        )
        try:
            watched = self._start_watchers()
            self.progress(
                f"[watch] watching {self.paths.roots[0]} ({', '.join(watched)}); "
                f"{self.profile} builds; Ctrl-C stops and leaves the backend running"
            )
            self._launch(None)
            while stop is None or not stop.is_set():
                self._tick()
        except Interrupted as exc:
            self._interrupted(exc)
            raise
        finally:
            with held():  # a second Ctrl-C waits: no cargo is left running on its own
                self.stopping.set()
                if self.job is not None:
                    self.job.cancel()
                    self.job.join(timeout=10)
                with contextlib.suppress(FileNotFoundError):
                    self._watch_file.unlink()
                shutil.rmtree(self._keep_dir, ignore_errors=True)

    def _interrupted(self, exc: Interrupted) -> None:
        """Which cycle the interrupt stopped, and what its backend runs now."""
        if self.at is None:
            return
        point, running = self.at
        shown = files([self.paths.shown(Path(p)) for p in running.changed])
        if point == "build":
            said = f"the build of {shown} is cancelled; the backend was not touched"
        elif point == "serve":
            said = f"{shown} is built but not served; the backend was not touched"
        elif point in ("copy", "health") and self.serving == running.identity:
            said = f"the backend restarted on the build of {shown}, not yet checked"
        elif point == "copy":  # the engine failed the copy or the restart
            said = f"the build of {shown} may be half served: `devenv up` sets it right"
        elif point == "checks":
            said = f"the backend serves the build of {shown}; its route checks were cut short"
        else:
            return  # the cycle was reported
        self.progress(f"[watch] {exc.message}: {said}")

    @property
    def _env(self) -> dict[str, str]:
        return dict(os.environ, CARGO_TARGET_DIR=str(self.target))

    @property
    def _watch_file(self) -> Path:
        from devenv.state import state_dir

        return state_dir(self.root, self.config.name) / WATCH_FILE

    def _start_watchers(self) -> list[str]:
        trees = [p for p in self.paths.trees() if p.is_dir()]
        for paths, recursive in ((trees, True), (list(self.paths.roots), False)):
            if paths:
                threading.Thread(
                    target=self._watch, args=(paths, recursive), name="watch", daemon=True
                ).start()
        return [f"{self.paths.shown(t)}/" for t in trees] + ["top-level cargo files"]

    def _watch(self, paths: list[Path], recursive: bool) -> None:
        import watchfiles

        def relevant(_change: watchfiles.Change, path: str) -> bool:
            return self.paths.relevant(Path(path))

        try:
            for changes in watchfiles.watch(
                *paths,
                watch_filter=relevant,
                debounce=int(LONGEST * 1000),
                step=WATCHER_STEP_MS,
                stop_event=self.stopping,
                recursive=recursive,
                raise_interrupt=False,
                rust_timeout=500,
            ):
                self.events.put({path for _, path in changes})
        except (OSError, RuntimeError) as exc:  # e.g. the inotify watch limit
            self.events.put(f"the file watcher stopped: {exc}")

    # --- one turn of the loop ------------------------------------------------------------

    def _tick(self) -> None:
        due = self.debouncer.due(time.monotonic())
        wait = IDLE if due is None or self.job is not None else min(IDLE, due)
        items: list[set[str] | CargoBuild | str] = []
        with contextlib.suppress(queue.Empty):
            items.append(self.events.get(timeout=wait))
            while True:
                items.append(self.events.get_nowait())
        for item in items:
            if isinstance(item, set):
                self.debouncer.add(item, time.monotonic())
            elif isinstance(item, str):
                self.progress(f"[watch] warning: {item}")
        if self.job is not None and self.debouncer.pending:
            self._cancel_build()
        if self.job is not None:
            result = self.job.result()
            if result is not None:
                self.job, running = None, self.running
                self.running = None
                if running is None:
                    self._warmed(result)
                else:
                    self._finish(running, result)
        if self.job is None and self.debouncer.due(time.monotonic()) == 0:
            self._begin(self.debouncer.take())

    def _cancel_build(self) -> None:
        assert self.job is not None
        self.job.cancel()
        self.job = None
        if self.running is not None:  # a warm-up is simply dropped
            self.carried = self.running.cancelled + 1
            self.debouncer.add(self.running.changed, time.monotonic())
            shown = files([self.paths.shown(Path(p)) for p in self.running.changed])
            self.progress(f"[watch] saved again during the build of {shown}: building anew")
            self.running, self.at = None, None

    def _launch(self, running: _Running | None) -> None:
        from devenv.images.build import TARGET_LOCK, built_binary

        assert self._keep_dir is not None
        self.running = running
        self.job = CargoBuild(
            self.command,
            cwd=self.build.context,
            env=self._env,
            lock=self.target / TARGET_LOCK,
            built=built_binary(self.target, self.build, self.profile),
            keep=self._keep_dir / self.build.binary,
            done=self.events.put,
        ).start()

    def _warmed(self, result: BuildResult) -> None:
        if result.ok:
            self.current = result.stamp
            self.progress(f"[watch] ready: the {self.profile} build is up to date "
                          f"({result.seconds:.1f} s); a save now builds incrementally")  # fmt: skip
        elif not result.cancelled:
            self.progress(f"[watch] the checkout does not build as it is ({result.error}); "
                          "watching for a fix")  # fmt: skip

    # --- a cycle -------------------------------------------------------------------------

    def _begin(self, changed: tuple[str, ...]) -> None:
        from devenv.images.identity import backend_identity

        cancelled, self.carried = self.carried, 0
        shown = files([self.paths.shown(Path(p)) for p in changed])
        self.progress(f"[watch] {shown} changed: cargo build ({self.profile}) ...")
        identity = backend_identity(self.root, self.build)
        running = _Running(changed, identity, cancelled, None)
        self._launch(running)
        self.at = ("build", running)
        # while cargo runs: the database against the source's migrations, as `up` checks
        try:
            refused, before = self._gate()
        except DevenvError as exc:
            refused, before = exc, None
        if refused is not None:
            assert self.job is not None
            self.job.cancel()
            self.job, self.running = None, None
            self._reported(self._cycle(running, "refused", error=refused.message))
            return
        self.running = replace(running, before=before)
        self.pause("build")

    def _gate(self) -> tuple[DevenvError | None, tuple[AppliedMigration, ...] | None]:
        """A refusal when the database holds migrations the source contradicts; else the
        applied rows when the source has new ones (to say what the restart applies)."""
        from devenv.migrations import compare, conflict, read_migration_set
        from devenv.probes.base import ProbeFailure

        source = self.config.migration_source()
        if source.directory is None or source.source is None:
            return None, None
        known = read_migration_set(source.directory, source=source.source, display=source.display)
        try:
            applied = self.clients.applied_migrations()
        except ProbeFailure as exc:
            self.progress(f"[watch] warning: migrations not compared ({exc.message})")
            return None, None
        verdict = compare(known, applied)
        if not verdict.ok:
            external = not self.stack.local("postgres")
            refusal = conflict(
                verdict, known, project=self.stack.name, source=str(known.source),
                external=external,
            )  # fmt: skip
            return refusal, None
        return None, applied if verdict.pending else None

    def _finish(self, running: _Running, result: BuildResult) -> None:
        if result.cancelled:
            return
        if not result.ok:
            cycle = self._cycle(
                running, "build-failed", build=result.seconds, error=result.error,
                details=result.excerpt,
            )  # fmt: skip
        elif result.stamp == self.current:
            cycle = self._cycle(running, "unchanged", build=result.seconds)
        else:
            self._point("serve", running)
            try:
                cycle = self._serve(running, result)
            except DevenvError as exc:
                cycle = self._cycle(running, "failed", build=result.seconds, error=exc.one_line())
        self._reported(cycle)

    def _serve(self, running: _Running, result: BuildResult) -> Cycle:
        from devenv.images.build import BACKEND_BINARY, check_glibc
        from devenv.state import Serving, clear_serving, project_lock, write_serving

        assert result.binary is not None
        check_glibc(self.runtime, result.binary, self.progress)
        with project_lock(self.root, self.config.name, notify=self.progress):
            engine = self.runtime.observe(self.config.name)
            container = engine.container("backend")
            if container is None:
                return self._cycle(
                    running, "failed", build=result.seconds,
                    error=f"project {self.config.name} has no backend container: run "
                    "`devenv up` (watch serves a stack that is up)",
                )  # fmt: skip
            started = time.monotonic()
            with held() as waiting:  # Ctrl-C waits until the record says what runs
                clear_serving(self.root, self.config.name)
                # into the running container (the engine replaces a running executable),
                # then a restart: the old process serves until the new one starts
                self.runtime.put_file(container.id, result.binary, f"/app/{BACKEND_BINARY}")
                self._point("copy", running, waiting)
                self.runtime.stop(container.id, timeout=STOP_TIMEOUT)
                self.runtime.start(container.id, service="backend")
                self.current = result.stamp
                serving = Serving(container.id, running.identity, self.profile)
                write_serving(self.root, self.config.name, serving)
                self.serving = running.identity
            self._point("health", running)
            try:
                self._wait_ready(engine)
            except ReadinessError as exc:
                return self._cycle(
                    running, "crashed", build=result.seconds,
                    restart=time.monotonic() - started, error=self._why_down(container.id, exc),
                    details=tuple(exc.details.splitlines()),
                )  # fmt: skip
            restarted = time.monotonic() - started
        self.at = ("checks", running)
        checks = self._checks()
        return self._cycle(
            running, "served", build=result.seconds, restart=restarted, checks=checks,
            applied=self._applied(running.before),
        )  # fmt: skip

    def _wait_ready(self, engine: Observed) -> None:
        """`/health` until it answers, as `up` waits: a backend that exits is noticed at once
        and reported with its last log lines."""
        from devenv.handlers import Handlers
        from devenv.observe import Observation
        from devenv.plan import plan_restart

        plan = plan_restart(self.stack, engine, "backend")
        handlers = Handlers(
            plan,
            Observation(engine=engine),
            self.runtime,
            self.clients,
            progress=self.progress,
            timeout=self.timeout,
            cancel=threading.Event(),
            poll=(0.005, 0.02),  # a restart takes a tenth of a second: see it at once
        )
        handlers.wait_ready(plan.step("wait-ready:backend"))

    def _why_down(self, container_id: str, exc: ReadinessError) -> str:
        """A dead backend's own first error ("backend exited with code 101: panicked at
        ..."), as `devenv check` names it; the readiness error when it still runs."""
        from devenv.checks.services import running_check
        from devenv.observe import service_state

        state = self.runtime.inspect_state(container_id)
        if state is None or state.state == "running":
            return exc.message
        return running_check(service_state("backend", state, self.runtime)).detail

    def _checks(self) -> Checks:
        from devenv.checks.contract import run_contract_checks

        transport = self.pause.transport()  # None: the checks make their own
        try:
            results = run_contract_checks(
                self.contract,
                self.stack.endpoints.backend_url,
                bypass_expected=self.stack.profile.dev_bypass,
                object_exists=self.clients.object_exists,
                transport=transport,
            )
        finally:
            if transport is not None:
                transport.close()
        return Checks.of(results)

    def _applied(self, before: tuple[AppliedMigration, ...] | None) -> tuple[str, ...]:
        from devenv.probes.base import ProbeFailure

        if before is None:
            return ()
        known = {row.version for row in before}
        try:
            after = self.clients.applied_migrations()
        except ProbeFailure:
            return ()
        return tuple(
            f"{row.version} {row.description}".strip()
            for row in after
            if row.success and row.version not in known
        )

    def _cycle(
        self,
        running: _Running,
        outcome: Outcome,
        *,
        build: float = 0.0,
        restart: float = 0.0,
        checks: Checks | None = None,
        applied: tuple[str, ...] = (),
        error: str | None = None,
        details: tuple[str, ...] = (),
    ) -> Cycle:
        return Cycle(
            changed=tuple(self._from_root(p) for p in running.changed),
            shown=tuple(self.paths.shown(Path(p)) for p in running.changed),
            outcome=outcome,
            ended=datetime.now(UTC).astimezone(),
            build_seconds=build,
            restart_seconds=restart,
            checks=checks,
            applied=applied,
            cancelled=running.cancelled,
            error=error,
            details=details,
        )

    def _from_root(self, path: str) -> str:
        """A changed path relative to the project root, through the checkout as the profile
        names it (a symlinked checkout stays under the root)."""
        found = Path(path)
        if found.is_relative_to(self.build.source):
            found = self.build.context / found.relative_to(self.build.source)
        return os.path.relpath(found, self.root)

    def _point(self, point: str, running: _Running, waiting: threading.Event | None = None) -> None:
        self.at = (point, running)
        self.pause(point, waiting)

    def _reported(self, cycle: Cycle) -> None:
        """The cycle's end, whole: watch.json and the line (or JSON object) are not cut by a
        Ctrl-C, which acts once both are out."""
        from devenv.state import write_json_atomic

        with held() as waiting:
            self.cycles += 1
            data = watch_file_data(cycle, os.getpid())
            if data["error"] is not None:  # one line, as the dashboard shows it
                data["error"] = " ".join(self.secrets.redact(data["error"]).split())
            write_json_atomic(self._watch_file, data)
            self.pause("report", waiting)
            self.report(cycle)
            self.at = None
