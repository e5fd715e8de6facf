"""What each kind of plan step does: the engine calls, writes and waits behind one `up`.

A handler does what its step says and reports what happened in one line; it decides nothing
the plan did not. Failures leave as DevenvErrors (the executor records them).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from devenv.errors import PortConflictError, ProviderError, ReadinessError
from devenv.images.choice import BaseChoice
from devenv.observe import Observation
from devenv.plan import Plan, Step, StepKind
from devenv.probes.waiting import Clock, WaitResult, wait_ready
from devenv.runtime.base import Progress, Runtime

if TYPE_CHECKING:
    from devenv.probes.base import Probe
    from devenv.probes.clients import Clients
    from devenv.stack import Stack

T = TypeVar("T")

EXTERNAL_TIMEOUT = 15.0  # an external provider answers now or is reported, not waited on
GATE_TIMEOUT = 5.0  # Postgres already answered its probe (local) or a moment ago (external)
CRASH_POLL = 0.2  # how often a wait asks the engine whether the container died


@dataclass
class _Call(Generic[T]):
    """Any read or write as a probe for `wait_ready`: the attempt keeps its result."""

    name: str
    endpoint: str
    call: Callable[[], T]
    result: T | None = None

    def attempt(self) -> str:
        self.result = self.call()
        return "ok"


class Handlers:
    """The handlers of one plan, keyed by step kind (`table`)."""

    def __init__(
        self,
        plan: Plan,
        observation: Observation,
        runtime: Runtime,
        clients: Clients,
        *,
        progress: Progress,
        timeout: float,
        cancel: threading.Event,
        clock: Clock | None = None,
        poll: tuple[float, float] = (0.02, 0.25),  # the waits' first and longest interval
    ) -> None:
        assert plan.stack is not None
        self.plan = plan
        self.observation = observation
        self.stack: Stack = plan.stack
        self.rt = runtime
        self.clients = clients
        self.progress = progress
        self.timeout = timeout
        self.cancel = cancel
        self.clock = clock or Clock(sleep=cancel.wait)
        self.poll = poll
        # the containers as observed; `create`/`recreate` replace their entry
        self.container_ids = {c.service: c.id for c in observation.engine.containers}
        if any(s.kind == "seed-user" for s in plan.steps):
            # the seed writes through psycopg (about 0.1 s to import): load it while the
            # engine creates containers, instead of after, when the interpreter is idle
            threading.Thread(target=_preload_psycopg, daemon=True).start()

    def table(self) -> dict[StepKind, Callable[[Step], str]]:
        return {
            "save-state": self.save_state,
            "claim-ports": self.claim_ports,
            "claim-image": self.claim_image,
            "verify-external": self.verify_external,
            "remove": self.remove,
            "create-volume": self.create_volume,
            "pull-image": self.pull_image,
            "build-image": self.build_image,
            "create": self.create,
            "recreate": self.recreate,
            "start": self.start,
            "restart": self.restart,
            "keep": self.keep,
            "create-bucket": self.create_bucket,
            "wait-ready": self.wait_ready,
            "verify-migrations": self.verify_migrations,
            "seed-user": self.seed_user,
            "snapshot-golden": self.snapshot_golden,
        }

    # --- files ---------------------------------------------------------------------------

    def save_state(self, step: Step) -> str:
        from devenv.state import load_state, save_state

        before = load_state(self.stack.config.options.root, self.stack.name)
        save_state(before.path, self.stack.credentials, {**before.ports, **self.stack.ports})
        return step.cause

    def claim_ports(self, step: Step) -> str:
        from devenv.state import claim_ports

        taken = claim_ports(self.stack.name, self.stack.ports.values())
        if taken:
            shown = ", ".join(str(p) for p in sorted(taken))
            raise PortConflictError(
                f"another devenv project claimed port {shown} while this one chose it",
                hint="run `devenv up` again: it chooses around the new claim",
            )
        return step.cause

    def claim_image(self, step: Step) -> str:
        from devenv.state import image_claims

        build = self.stack.config.backend_build()
        ref = self.plan.desired[step.target].image.ref
        with image_claims(self.stack.name) as claims:
            claims.claim(ref, source=str(build.source) if build else "")
        return f"claimed {ref}"

    # --- the engine ----------------------------------------------------------------------

    def remove(self, step: Step) -> str:
        cid = self.container_ids.pop(step.target, None)
        self.progress(f"{step.target}: removing container ({step.cause})")
        if cid is not None:
            self.rt.remove(cid)
        return "removed"

    def create_volume(self, step: Step) -> str:
        labels = next(
            dict(labels)
            for d in self.plan.desired.values()
            for name, labels in d.volumes
            if name == step.target
        )
        self.rt.create_volume(step.target, labels)
        return "created"

    def pull_image(self, step: Step) -> str:
        from devenv.images import acquire

        if step.target == "base":
            ref = self._base().ref
        else:
            ref = self.plan.desired[step.target].image.ref
        info = acquire.pull(
            self.rt, ref, label=step.target, progress=self.progress, stop=self.cancel.is_set
        )
        desired = self.plan.desired.get(step.target)
        if desired is not None:
            acquire.check_pg_major(step.target, desired.image, info, self.observation.engine)
        return f"pulled {ref}"

    def build_image(self, step: Step) -> str:
        from devenv.images import acquire
        from devenv.images import build as images

        if step.target == "base":
            base = self._base()
            self.progress(f"base  {step.cause}")
            acquire.build_base(self.rt, base, progress=self.progress)
            return f"built {base.ref}"
        choice = self.plan.desired[step.target].image
        self.progress(f"{step.target}  {choice.why}")
        backend = self.stack.config.backend_build() if choice.recipe == "backend" else None
        images.build(
            self.rt, self.stack.config.options.root, choice, backend=backend, progress=self.progress
        )
        return f"built {choice.ref}"

    def _base(self) -> BaseChoice:
        from devenv.plan import base_choice

        return base_choice(self.stack.config, self.observation)

    def create(self, step: Step) -> str:
        self.progress(f"{step.target}: create ({step.cause})")
        self.container_ids[step.target] = self.rt.create(self.plan.desired[step.target].spec)
        return "created"

    def recreate(self, step: Step) -> str:
        self.progress(f"{step.target}: recreate ({step.cause})")
        old = self.container_ids.get(step.target)
        if old is not None:
            self.rt.stop(old, timeout=10)
            self.rt.remove(old)
        self.container_ids[step.target] = self.rt.create(self.plan.desired[step.target].spec)
        return "recreated"

    def start(self, step: Step) -> str:
        if step.cause != "new container":
            self.progress(f"{step.target}: start ({step.cause})")
        self.rt.start(self.container_ids[step.target], service=step.target)
        return "started"

    def restart(self, step: Step) -> str:
        self.progress(f"{step.target}: restart ({step.cause})")
        cid = self.container_ids[step.target]
        self.rt.stop(cid, timeout=10)
        self.rt.start(cid, service=step.target)
        return "restarted"

    def keep(self, step: Step) -> str:
        return "kept"

    # --- the providers -------------------------------------------------------------------

    def create_bucket(self, step: Step) -> str:
        result = self._wait(
            _Call("objectstore", self.stack.url("objectstore"), self.clients.create_bucket)
        )
        if not result.ok:
            raise ReadinessError(
                f"bucket {step.target} could not be created: {result.detail}",
                hint="`devenv logs objectstore` says why",
            )
        return f"bucket {step.target} ready"

    def wait_ready(self, step: Step) -> str:
        service = step.target
        probe = self.clients.probe(service)
        cid = self.container_ids.get(service)
        result = self._wait(probe, container_id=cid)
        if result.ok:
            return f"{result.detail} in {result.elapsed:.2f}s"
        raise self._not_ready(service, probe, cid, result)

    def verify_external(self, step: Step) -> str:
        service = step.target
        probe = self.clients.probe(service)
        result = self._wait(probe, timeout=min(self.timeout, EXTERNAL_TIMEOUT))
        if result.ok:
            return result.detail
        raise ProviderError(
            f"service {service}: external provider at {probe.endpoint} is not "
            f"ready: {result.detail}",
            hint=f"check the `services.{service}` settings of profile {self.stack.profile.name} "
            "(`devenv config`)",
        )

    def verify_migrations(self, step: Step) -> str:
        """Once Postgres answers and before the backend container is touched.

        When the rows cannot be read even then, the backend (same URL, same credentials)
        most likely cannot read them either: it is started and, like sqlx, refuses a foreign
        database or fails on its own, with its own words in the logs."""
        from devenv.migrations import compare, conflict, summary

        known = self.observation.migrations.known
        assert known is not None  # the plan has this step only for a known migration set
        read = _Call("postgres migrations", "", self.clients.applied_migrations)
        result = self._wait(read, timeout=GATE_TIMEOUT)
        if not result.ok or read.result is None:
            self.progress(
                f"warning: backend migrations not verified ({result.detail}); "
                "starting the backend anyway: its own start-up check decides"
            )
            return "not verified"
        verdict = compare(known, read.result)
        source = str(known.source)
        if not verdict.ok:
            raise conflict(
                verdict,
                known,
                project=self.stack.name,
                source=source,
                external=not self.stack.local("postgres"),
            )
        said = f"migrations verified: {summary(verdict, source)}"
        self.progress(f"backend: {said}")
        return said

    def seed_user(self, step: Step) -> str:
        from devenv.probes.base import ProbeFailure

        try:
            self.clients.seed_dev_user()
        except ProbeFailure as exc:
            said = f"could not seed the dev-bypass user: {exc.message}"
            self.progress(f"warning: {said}")
            return said
        return "dev user seeded"

    def snapshot_golden(self, step: Step) -> str:
        """The healthy stack's database and bucket, kept for `devenv reset`. A golden state
        that cannot be taken fails nothing: it is a warning, and the next `up` plans it again."""
        from devenv.probes.base import ProbeFailure
        from devenv.snapshot.model import Provenance

        known = self.observation.migrations.known
        backend = self.plan.desired.get("backend")
        made = Provenance(str(known.source) if known else "", backend.image.ref if backend else "")
        try:
            said = self.clients.take_golden(made)
        except ProbeFailure as exc:
            said = f"golden snapshot not taken: {exc.message}"
            self.progress(f"warning: {said} (the next `up` tries again)")
            return said
        self.progress(f"{said}: `devenv reset` comes back to this state")
        return said

    # --- waiting -------------------------------------------------------------------------

    def _wait(
        self, probe: Probe, *, container_id: str | None = None, timeout: float | None = None
    ) -> WaitResult:
        last_check = [0.0]

        def abort() -> str | None:
            if self.cancel.is_set():
                return "interrupted"
            if container_id is None:
                return None
            now = self.clock.now()
            if now - last_check[0] < CRASH_POLL:
                return None
            last_check[0] = now
            state = self.rt.inspect_state(container_id)
            if state is None:
                return "container disappeared"
            if state.state in ("exited", "dead"):
                return f"container exited with code {state.exit_code}"
            return None

        return wait_ready(
            probe,
            timeout=self.timeout if timeout is None else timeout,
            abort=abort,
            clock=self.clock,
            first_delay=self.poll[0],
            max_delay=self.poll[1],
        )

    def _not_ready(
        self, service: str, probe: Probe, container_id: str | None, result: WaitResult
    ) -> ReadinessError:
        state = "external provider"
        logs = ""
        if container_id is not None:
            st = self.rt.inspect_state(container_id)
            state = f"{st.state} (exit code {st.exit_code})" if st else "gone"
            logs = self.rt.logs(container_id, tail=15)
        why = result.fatal or f"not ready after {self.timeout:.0f}s"
        last = result.detail
        details = [
            f"  probe:     {probe.name} ({type(probe).__name__})",
            f"  endpoint:  {probe.endpoint}",
            f"  last error: {last}",
            f"  container: {state}",
        ]
        if logs.strip():
            details.append("  last log lines:")
            details += ["    " + line for line in logs.rstrip().splitlines()]
        return ReadinessError(
            f"service {service}: {why}; last error: {last}",
            hint=f"read the log lines below, fix the cause, then `devenv up` "
            f"(full logs: `devenv logs {service}`)",
            details="\n".join(details),
        )


def _preload_psycopg() -> None:
    with contextlib.suppress(ImportError):
        import psycopg  # noqa: F401
