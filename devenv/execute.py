"""Desired containers, probes per service, and the executor that runs a plan."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devenv.errors import DevenvError, Interrupted, ProviderError, ReadinessError
from devenv.model import SERVICES, ServiceSpec
from devenv.plan import Desired, ImageChoice, Plan, Step, volume_labels, with_labels
from devenv.runtime.base import LABEL_PG_MAJOR, ContainerSpec, Observed, Progress, Runtime
from devenv.stack import Stack

if TYPE_CHECKING:
    from devenv.images.build import BackendBuild
    from devenv.migrations import AppliedMigration, MigrationSet
    from devenv.probes.base import Probe


# --- desired state -----------------------------------------------------------------------


def image_choice(stack: Stack, runtime: Runtime, svc: ServiceSpec) -> ImageChoice:
    from devenv.images import build as images

    binding = stack.profile.binding(svc.name)
    if svc.name == "backend" and binding.settings.get("image"):
        ref = binding.settings["image"]
        found = runtime.image(ref)
        return ImageChoice(ref=ref, identity=found.id if found else ref, present=found is not None)
    standin = svc.standin
    recipe = standin.recipe if standin else None
    build = backend_build(stack, svc)
    identity: str | None = None
    if recipe == "backend" and build is not None:
        identity = images.backend_identity(stack.options.root, build)
    elif recipe is not None:
        identity = images.recipe_hash(stack.options.root, recipe)
    return images.choose(
        runtime,
        ref=svc.image,
        standin=standin.image if standin else None,
        recipe=recipe,
        identity=identity,
    )


def backend_context(stack: Stack, svc: ServiceSpec) -> Path | None:
    if svc.name != "backend":
        return svc.build_context
    ctx = stack.profile.binding("backend").settings.get("context")
    return Path(ctx) if ctx else svc.build_context


def backend_build(stack: Stack, svc: ServiceSpec) -> BackendBuild | None:
    """How the profile asks for the backend to be built; None when it runs a given image."""
    from devenv.images.build import BACKEND_BINARY, BACKEND_PACKAGE, BackendBuild

    settings = stack.profile.binding("backend").settings
    context = backend_context(stack, svc)
    if svc.name != "backend" or context is None or settings.get("image"):
        return None
    return BackendBuild(
        context=context,
        package=settings.get("package", BACKEND_PACKAGE),
        binary=settings.get("binary", BACKEND_BINARY),
        locked={"true": True, "false": False}.get(settings.get("locked", "")),
    )


def migration_source(stack: Stack) -> tuple[MigrationSet | None, str]:
    """The migrations the backend will accept in its database, or None and the reason why
    they are unknown (an external backend, an image without `migrations`)."""
    from devenv.migrations import read_migration_set

    binding = stack.profile.binding("backend")
    if binding.provider == "external":
        return None, "the backend is external"
    image = binding.settings.get("image")
    context = None if image else backend_context(stack, stack.project.service("backend"))
    explicit = binding.settings.get("migrations")
    if explicit:
        directory = Path(explicit)
        source = context.resolve() if context else directory.resolve()
        shown = f"{directory} (services.backend.migrations)"
        return read_migration_set(directory, source=source, display=shown), ""
    if image:
        return None, (
            f"the backend runs image {image}; services.backend.migrations would name its migrations"
        )
    if context is None:
        return None, "the backend has no source checkout"
    directory = context / "migrations"
    if not directory.is_dir():
        return None, f"{context.resolve()} has no migrations directory"
    return read_migration_set(directory, source=context.resolve(), display=str(directory)), ""


def applied_now(stack: Stack, observed: Observed) -> tuple[AppliedMigration, ...] | None:
    """The database's migration rows when they can be read right now (read-only), else None:
    a local Postgres that is not running yet is checked later, once it is ready."""
    from devenv.probes.base import ProbeFailure
    from devenv.probes.sqlx import read_applied

    if stack.local("postgres"):
        pg = observed.container("postgres")
        if pg is None or pg.state != "running":
            return None
    try:
        return read_applied(stack.endpoints.database_url)
    except ProbeFailure:
        return None


def migration_gate(stack: Stack, known: MigrationSet, *, progress: Progress) -> Callable[[], None]:
    """The check run once Postgres is ready and before the backend container is touched.

    When the rows cannot be read even then, the backend (same URL, same credentials) most
    likely cannot read them either: it is started and, like sqlx, refuses a foreign database
    or fails on its own, with its own words in the logs."""

    def verify() -> None:
        from devenv.config.secrets import mask_url, redact
        from devenv.migrations import compare, conflict, summary
        from devenv.probes.sqlx import AppliedMigrationsProbe
        from devenv.probes.waiting import wait_ready

        url = stack.endpoints.database_url
        probe = AppliedMigrationsProbe(url=url, display=mask_url(url))
        result = wait_ready(probe, timeout=GATE_TIMEOUT)
        if not result.ok:
            detail = redact(result.detail, stack.secrets())
            progress(
                f"warning: backend migrations not verified ({detail}); starting the backend "
                "anyway: its own start-up check decides"
            )
            return
        verdict = compare(known, probe.rows)
        source = str(known.source)
        if not verdict.ok:
            raise conflict(
                verdict,
                known,
                project=stack.name,
                source=source,
                external=not stack.local("postgres"),
            )
        progress(f"backend: migrations verified: {summary(verdict, source)}")

    return verify


GATE_TIMEOUT = 5.0  # Postgres already answered its probe (local) or a moment ago (external)


def desired_state(stack: Stack, runtime: Runtime) -> list[Desired]:
    out: list[Desired] = []
    for svc in stack.project.services:
        if not stack.local(svc.name):
            continue
        choice = image_choice(stack, runtime, svc)
        mounts = tuple((f"{stack.name}_{m.volume}", m.target) for m in svc.volumes)
        extra = {LABEL_PG_MAJOR: choice.pg_major} if choice.pg_major else {}
        volumes = tuple(
            (f"{stack.name}_{m.volume}", volume_labels(stack.name, m.volume, extra))
            for m in svc.volumes
        )
        ports: tuple[tuple[int, int], ...] = ()
        if svc.network_mode != "host":
            host = stack.state.ports.get(svc.name)
            ports = tuple(
                (p.container_port, host if (host and i == 0) else p.preferred_host_port)
                for i, p in enumerate(svc.ports)
            )
        environment = dict(svc.environment)
        if svc.name == "backend":
            from devenv.config.profiles import backend_env

            environment.update(backend_env(stack.profile))
        spec = ContainerSpec(
            project=stack.name,
            service=svc.name,
            name=f"{stack.name}-{svc.name}",
            image=choice.ref,
            image_id="",
            environment=tuple(sorted(environment.items())),
            command=svc.command,
            ports=ports,
            mounts=mounts,
            network_mode=svc.network_mode,
            user=svc.user,
        )
        out.append(
            Desired(
                service=svc.name,
                spec=with_labels(spec, choice.identity),
                image=choice,
                volumes=volumes,
                depends_on=tuple(d for d in svc.depends_on if stack.local(d)),
            )
        )
    return out


def removed_causes(stack: Stack) -> dict[str, str]:
    return {
        s: f"now bound to an external provider by profile {stack.profile.name}"
        for s in SERVICES
        if not stack.local(s)
    }


# --- probes ------------------------------------------------------------------------------


def probe_for(stack: Stack, service: str, *, create_bucket: bool = False) -> Probe:
    from devenv.config.secrets import mask_url
    from devenv.probes.base import HttpProbe, PostgresProbe, S3Probe

    if service == "postgres":
        url = stack.endpoints.database_url
        return PostgresProbe(url=url, display=mask_url(url))
    if service == "objectstore":
        return BucketProbe(S3Probe(stack.endpoints.storage), create=create_bucket)
    return HttpProbe(url=stack.endpoints.backend_url + "/health")


@dataclass
class BucketProbe:
    """The S3 round trip, creating the bucket first when devenv owns the store."""

    inner: Any
    create: bool
    name: str = "objectstore"

    @property
    def endpoint(self) -> str:
        return str(self.inner.endpoint)

    def attempt(self) -> str:
        if self.create:
            from devenv.probes.base import S3Client

            with S3Client(self.inner.target) as s3:
                if not s3.bucket_exists():
                    s3.create_bucket()
        return str(self.inner.attempt())


@dataclass
class ServiceOutcome:
    service: str
    action: str
    ready: bool
    detail: str
    seconds: float


def _preload_probe_libraries() -> None:
    """Import the Postgres driver (about 0.1 s of CPU) while the engine creates containers,
    instead of after: the waits on the engine leave the interpreter idle."""
    with contextlib.suppress(ImportError):
        import psycopg  # noqa: F401


class Executor:
    """Runs a plan: one worker per service, dependents start after their dependencies."""

    def __init__(
        self,
        stack: Stack,
        runtime: Runtime,
        plan: Plan,
        desired: Sequence[Desired],
        observed: Observed,
        progress: Progress,
        timeout: float,
        *,
        seed: bool = False,
        verify_migrations: Callable[[], None] | None = None,
    ) -> None:
        self.stack = stack
        # run before the backend container is (re)created or started, when the plan says so
        self.verify_migrations = verify_migrations
        self.rt = runtime
        self.plan = plan
        self.desired = {d.service: d for d in desired}
        self.observed = observed
        self.progress = progress
        self.timeout = timeout
        self.seed = seed  # create the bucket on an external store (never implied if protected)
        self.settled = {s: threading.Event() for s in self.desired}
        self.ready: set[str] = set()
        self.container_ids: dict[str, str] = {}
        self.failed: dict[str, DevenvError] = {}
        self.cancelled = threading.Event()  # set on SIGINT: workers stop waiting at once

    def run(self) -> list[ServiceOutcome]:
        if not self.plan.noop:
            threading.Thread(target=_preload_probe_libraries, daemon=True).start()
        for step in self.plan.steps:
            if step.kind == "remove":
                found = self.observed.container(step.target)
                if found is not None:
                    self.progress(f"{step.target}: removing container ({step.cause})")
                    self.rt.remove(found.id)
        outcomes: list[ServiceOutcome] = []
        services = [s for s in self.plan.order if s in self.desired]
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            futures = {s: pool.submit(self._service, s) for s in services}
            try:
                for s in services:
                    try:
                        outcomes.append(futures[s].result())
                    except Interrupted:
                        raise
                    except DevenvError as exc:
                        self.failed[s] = exc
            except BaseException:
                # Interrupted: let every worker leave its wait now; the pool then joins them.
                self.cancelled.set()
                raise
        external = [s for s in SERVICES if not self.stack.local(s)]
        for s in external:
            outcomes.append(self._external(s))
        if self.failed:
            first = next(iter(self.failed.values()))
            raise first
        return outcomes

    def _service(self, service: str) -> ServiceOutcome:
        t0 = time.monotonic()
        d = self.desired[service]
        try:
            action = self._converge(d)
            probe = probe_for(self.stack, service, create_bucket=service == "objectstore")
            result = self._wait(service, probe, self.container_ids.get(service))
            self.ready.add(service)
        finally:
            self.settled[service].set()
        return ServiceOutcome(service, action, True, result, time.monotonic() - t0)

    def _await_dependencies(self, d: Desired) -> None:
        """Start a dependent only once its dependencies pass their probes: started next to a
        database that is still initialising, the backend backs off (up to 4 s) and answers
        seconds after the database could serve it."""
        for dep in d.depends_on:
            while not self.settled[dep].wait(0.05):
                if self.cancelled.is_set():
                    raise ReadinessError(f"service {d.service} not started: interrupted")
            if dep not in self.ready:
                raise ReadinessError(
                    f"service {d.service} not started: its dependency {dep} is not ready"
                )

    def _converge(self, d: Desired) -> str:
        steps = {s.kind: s for s in self.plan.for_target(d.service)}
        spec = d.spec
        if "build" in steps:
            from devenv.images import build as images

            self.progress(f"{d.service}: {steps['build'].cause}")
            images.build(
                self.rt,
                self.stack.options.root,
                d.image,
                backend=backend_build(self.stack, self.stack.project.service(d.service)),
                progress=self.progress,
            )
        for name, labels in d.volumes:
            if self.observed.volume(name) is None:
                self.rt.create_volume(name, dict(labels))
        step: Step = next(s for s in self.plan.for_target(d.service) if s.kind not in ("build",))
        current = self.observed.container(d.service)
        if step.kind == "keep":
            if current is not None:
                self.container_ids[d.service] = current.id
            return "kept"
        self.progress(f"{d.service}: {step.kind} ({step.cause})")
        gate = self._gate(d.service)
        if gate is not None and current is not None:
            # The old container stays as it was when the database belongs to another source.
            self._await_dependencies(d)
            gate()
        if step.kind == "start" and current is not None:
            self._await_dependencies(d)
            self.rt.start(current.id, service=d.service)
            self.container_ids[d.service] = current.id
            return "started"
        if current is not None:
            self.rt.stop(current.id, timeout=10)
            self.rt.remove(current.id)
        # Create while the dependencies get ready; only the start waits for them.
        container_id = self.rt.create(spec)
        self._await_dependencies(d)
        if gate is not None and current is None:
            try:
                gate()
            except BaseException:
                self.rt.remove(container_id)  # created, never started: nothing ran
                raise
        self.container_ids[d.service] = container_id
        self.rt.start(container_id, service=d.service)
        return "recreated" if step.kind == "recreate" else "created"

    def _gate(self, service: str) -> Callable[[], None] | None:
        deferred = any(s.kind == "verify" for s in self.plan.steps)
        if service != "backend" or not deferred:
            return None
        return self.verify_migrations

    def _wait(self, service: str, probe: Probe, container_id: str | None) -> str:
        from devenv.probes.waiting import wait_ready

        last_check = [0.0]

        def crashed() -> str | None:
            if self.cancelled.is_set():
                return "interrupted"
            if container_id is None:
                return None
            now = time.monotonic()
            if now - last_check[0] < 0.2:
                return None
            last_check[0] = now
            state = self.rt.inspect_state(container_id)
            if state is None:
                return "container disappeared"
            if state.state in ("exited", "dead"):
                return f"container exited with code {state.exit_code}"
            return None

        result = wait_ready(probe, timeout=self.timeout, abort=crashed)
        if result.ok:
            return f"{result.detail} in {result.elapsed:.2f}s"
        raise self._not_ready(service, probe, container_id, result.detail, result.fatal)

    def _not_ready(
        self, service: str, probe: Probe, container_id: str | None, last: str, fatal: str | None
    ) -> ReadinessError:
        from devenv.config.secrets import redact

        state = "external provider"
        logs = ""
        if container_id is not None:
            st = self.rt.inspect_state(container_id)
            state = f"{st.state} (exit code {st.exit_code})" if st else "gone"
            logs = self.rt.logs(container_id, tail=15)
        secrets = self.stack.secrets()
        why = fatal or f"not ready after {self.timeout:.0f}s"
        details = [
            f"  probe:     {probe.name} ({type(probe).__name__})",
            f"  endpoint:  {redact(probe.endpoint, secrets)}",
            f"  last error: {redact(last, secrets)}",
            f"  container: {state}",
        ]
        if logs.strip():
            details.append("  last log lines:")
            details += ["    " + redact(line, secrets) for line in logs.rstrip().splitlines()]
        return ReadinessError(
            f"service {service}: {redact(why, secrets)}; last error: {redact(last, secrets)}",
            hint=f"read the log lines below, fix the cause, then `devenv up` "
            f"(full logs: `devenv logs {service}`)",
            details="\n".join(details),
        )

    def _external(self, service: str) -> ServiceOutcome:
        t0 = time.monotonic()
        create = service == "objectstore" and self.seed
        probe = probe_for(self.stack, service, create_bucket=create)
        from devenv.probes.waiting import wait_ready

        result = wait_ready(probe, timeout=min(self.timeout, 15.0))
        if not result.ok:
            from devenv.config.secrets import redact

            secrets = self.stack.secrets()
            raise ProviderError(
                f"service {service}: external provider at {redact(probe.endpoint, secrets)} "
                f"is not ready: {redact(result.detail, secrets)}",
                hint=f"check the `services.{service}` settings of profile "
                f"{self.stack.profile.name} (`devenv config`)",
            )
        return ServiceOutcome(service, "external", True, result.detail, time.monotonic() - t0)
