"""Use cases: up, down, status, logs, check, report. Wiring only; adapters do the I/O."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devenv.errors import (
    ConfigError,
    DevenvError,
    PortConflictError,
    ProviderError,
    ReadinessError,
    RefusedError,
)
from devenv.model import SERVICES, CheckResult, Profile, Project, ServiceSpec
from devenv.plan import Desired, ImageChoice, Plan, Step, reconcile, volume_labels, with_labels
from devenv.runtime.base import LABEL_PG_MAJOR, ContainerSpec, Observed, Progress, Runtime
from devenv.state import State, load_state, port_claims, project_lock

if TYPE_CHECKING:
    from devenv.probes.base import Probe, S3Target

DEV_USER_ID = "00000000-0000-0000-0000-000000000001"
SCHEMA_VERSION = 1
_NAME_OK = re.compile(r"[^a-z0-9_-]+")


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Options:
    """Where and how: the project directory, its name, the profile and overrides."""

    root: Path
    project: str
    profile: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def find_root(start: Path | None = None) -> Path:
    env = os.environ.get("DEVENV_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "compose" / "compose.yaml").is_file():
            return candidate
    raise ConfigError(
        "no compose/compose.yaml here or in any parent directory",
        hint="run devenv inside the project checkout, or set DEVENV_ROOT",
    )


def default_project_name(root: Path) -> str:
    env = os.environ.get("DEVENV_PROJECT")
    if env:
        return env
    return _NAME_OK.sub("-", root.name.lower()).strip("-_") or "devenv"


# --- the resolved stack ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """How a client on the host (and the host-network backend) reaches each service."""

    database_url: str
    storage: S3Target
    backend_url: str


@dataclass
class Stack:
    options: Options
    project: Project
    profile: Profile
    state: State
    endpoints: Endpoints
    variables: dict[str, str]

    @property
    def name(self) -> str:
        return self.options.project

    def local(self, service: str) -> bool:
        return self.profile.binding(service).provider == "local"

    def secrets(self) -> list[str]:
        found = [v for v in self.state.credentials.values() if v]
        found += list(self.profile.secrets())
        found.append(self.endpoints.database_url)
        return found


def _load_project(options: Options, variables: Mapping[str, str]) -> Project:
    from devenv.config.compose import load_project

    env = dict(options.environ)
    env.update(variables)
    return load_project(options.root, project_name=options.project, variables=env)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:port (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _preferred_port(svc: ServiceSpec) -> int | None:
    if svc.ports:
        return svc.ports[0].preferred_host_port
    return svc.preferred_port


def port_variable(service: str) -> str:
    return f"{service.upper()}_PORT"


def choose_ports(
    project: Project,
    state: State,
    observed: Observed | None,
    *,
    local: Callable[[str], bool],
    strict: bool,
    holder: Callable[[int], str | None],
    notes: list[str],
    claimed: Collection[int] = (),
) -> dict[str, int]:
    """Keep last run's port when ours or free; else the preferred one; else any free one.

    Ports in `claimed` belong to other devenv projects on this machine and are never chosen.
    """
    chosen: dict[str, int] = {}
    for svc in project.services:
        preferred = _preferred_port(svc)
        if preferred is None or not local(svc.name):
            continue
        ours = observed.container(svc.name) if observed else None
        remembered = state.ports.get(svc.name)
        held_by_us = ours is not None and ours.state == "running"
        candidates = [p for p in (remembered, preferred) if p]
        port = None
        for candidate in candidates:
            if candidate in chosen.values() or candidate in claimed:
                continue
            if (held_by_us and candidate == remembered) or port_is_free(candidate):
                port = candidate
                break
        if port is None:
            taken = remembered or preferred
            if strict:
                who = holder(taken)
                by = f"container {who}" if who else "another process"
                if who is None and taken in claimed:
                    by = "another devenv project on this machine"
                raise PortConflictError(
                    f"service {svc.name}: host port {taken} is held by {by}",
                    hint=f"stop {who or 'that process'}, or drop --strict-ports to use a free port",
                )
            port = _free_port()
            while port in claimed or port in chosen.values():
                port = _free_port()
            notes.append(f"{svc.name}: port {taken} is taken, using {port} instead")
        chosen[svc.name] = port
    return chosen


def resolve_stack(
    options: Options,
    *,
    observed: Observed | None = None,
    strict_ports: bool = False,
    holder: Callable[[int], str | None] = lambda _p: None,
    notes: list[str] | None = None,
    settle_ports: bool = True,
    claim_ports: bool = False,
) -> Stack:
    """Profile + state + compose file -> the concrete configuration of this run.

    With `settle_ports`, host ports are chosen (see choose_ports); with `claim_ports` too, the
    choice is recorded machine-wide so that a concurrent `up` of another project keeps off it.
    """
    from devenv.config.profiles import resolve_profile

    profile = resolve_profile(
        options.root, options.profile, environ=options.environ, cli_overrides=options.overrides
    )
    state = load_state(options.root, options.project)
    creds = {
        "POSTGRES_PASSWORD": state.credential("postgres_password"),
        "STORAGE_ACCESS_KEY_ID": "devenv" + state.credential("storage_access_key", length=12),
        "STORAGE_SECRET_ACCESS_KEY": state.credential("storage_secret_key", length=32),
    }
    first = _load_project(options, creds)
    ports = dict(state.ports)
    if settle_ports:
        with port_claims(options.project) as claims:
            chosen = choose_ports(
                first,
                state,
                observed,
                local=lambda s: profile.binding(s).provider == "local",
                strict=strict_ports,
                holder=holder,
                notes=notes if notes is not None else [],
                claimed=claims.others(),
            )
            if claim_ports:
                claims.claim(chosen.values())
        ports.update(chosen)
    variables = dict(creds)
    for svc in first.services:
        preferred = _preferred_port(svc)
        if preferred is not None:
            variables[port_variable(svc.name)] = str(ports.get(svc.name, preferred))
    pg_env = first.service("postgres").environment if _has(first, "postgres") else {}
    user = pg_env.get("POSTGRES_USER", "postgres")
    db = pg_env.get("POSTGRES_DB", user)
    pg = profile.binding("postgres")
    if pg.provider == "external":
        database_url = pg.settings["url"]
    else:
        database_url = (
            f"postgres://{user}:{creds['POSTGRES_PASSWORD']}@127.0.0.1:"
            f"{variables.get('POSTGRES_PORT', '5432')}/{db}"
        )
    from devenv.probes.base import S3Target

    os_b = profile.binding("objectstore")
    if os_b.provider == "external":
        storage = S3Target(
            endpoint=os_b.settings["endpoint"],
            bucket=os_b.settings["bucket"],
            region=os_b.settings.get("region", "auto"),
            access_key=os_b.settings["access_key_id"],
            secret_key=os_b.settings["secret_access_key"],
        )
    else:
        storage = S3Target(
            endpoint=f"http://127.0.0.1:{variables.get('OBJECTSTORE_PORT', '9000')}",
            bucket="ignition",
            region="us-east-1",
            access_key=creds["STORAGE_ACCESS_KEY_ID"],
            secret_key=creds["STORAGE_SECRET_ACCESS_KEY"],
        )
    be = profile.binding("backend")
    backend_url = (
        be.settings["url"].rstrip("/")
        if be.provider == "external"
        else f"http://127.0.0.1:{variables.get('BACKEND_PORT', '8080')}"
    )
    variables.update(
        DATABASE_URL=database_url,
        STORAGE_ENDPOINT=storage.endpoint,
        STORAGE_BUCKET=storage.bucket,
        STORAGE_REGION=storage.region,
        STORAGE_ACCESS_KEY_ID=storage.access_key,
        STORAGE_SECRET_ACCESS_KEY=storage.secret_key,
        AUTH_DEV_BYPASS="true" if profile.dev_bypass else "false",
    )
    project = _load_project(options, variables)
    if settle_ports:
        state.ports.update(
            {k: v for k, v in ports.items() if profile.binding(k).provider == "local"}
        )
    endpoints = Endpoints(database_url=database_url, storage=storage, backend_url=backend_url)
    return Stack(options, project, profile, state, endpoints, variables)


def _has(project: Project, name: str) -> bool:
    return any(s.name == name for s in project.services)


# --- desired state -----------------------------------------------------------------------


def _image_choice(stack: Stack, runtime: Runtime, svc: ServiceSpec) -> ImageChoice:
    from devenv.images import build as images

    binding = stack.profile.binding(svc.name)
    if svc.name == "backend" and binding.settings.get("image"):
        ref = binding.settings["image"]
        found = runtime.image(ref)
        return ImageChoice(ref=ref, identity=found.id if found else ref, present=found is not None)
    standin = svc.standin
    recipe = standin.recipe if standin else None
    context = _backend_context(stack, svc)
    identity: str | None = None
    if recipe == "backend" and context is not None:
        identity = images.source_fingerprint(context)
    elif recipe is not None:
        identity = images.recipe_hash(stack.options.root, recipe)
    return images.choose(
        runtime,
        ref=svc.image,
        standin=standin.image if standin else None,
        recipe=recipe,
        identity=identity,
    )


def _backend_context(stack: Stack, svc: ServiceSpec) -> Path | None:
    if svc.name != "backend":
        return svc.build_context
    ctx = stack.profile.binding("backend").settings.get("context")
    return Path(ctx) if ctx else svc.build_context


def desired_state(stack: Stack, runtime: Runtime) -> list[Desired]:
    out: list[Desired] = []
    for svc in stack.project.services:
        if not stack.local(svc.name):
            continue
        choice = _image_choice(stack, runtime, svc)
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
        spec = ContainerSpec(
            project=stack.name,
            service=svc.name,
            name=f"{stack.name}-{svc.name}",
            image=choice.ref,
            image_id="",
            environment=tuple(sorted(svc.environment.items())),
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


# --- up ----------------------------------------------------------------------------------


@dataclass
class ServiceOutcome:
    service: str
    action: str
    ready: bool
    detail: str
    seconds: float


@dataclass
class UpResult:
    project: str
    profile: str
    plan: Plan
    outcomes: list[ServiceOutcome]
    notes: list[str]
    seconds: float

    @property
    def noop(self) -> bool:
        return self.plan.noop


def _runtime() -> Runtime:
    from devenv.runtime.docker import DockerRuntime

    return DockerRuntime()


def plan_up(
    options: Options,
    *,
    strict_ports: bool = False,
    runtime: Runtime | None = None,
    claim: bool = False,
) -> tuple[Stack, Plan, list[Desired], list[str]]:
    """Observe once and plan; only a real `up` (claim=True) records its ports machine-wide."""
    # Config errors first: a typo is reported as such even when the engine is down.
    resolve_stack(options, settle_ports=False)
    rt = runtime or _runtime()
    observed = rt.observe(options.project)
    notes: list[str] = []
    stack = resolve_stack(
        options,
        observed=observed,
        strict_ports=strict_ports,
        holder=rt.port_holder,
        notes=notes,
        claim_ports=claim,
    )
    desired = desired_state(stack, rt)
    plan = reconcile(desired, observed, removed_cause=removed_causes(stack))
    return stack, plan, desired, notes


def up(
    options: Options,
    *,
    progress: Progress = _quiet,
    strict_ports: bool = False,
    timeout: float = 90.0,
    seed_protected: bool = False,
) -> UpResult:
    started = time.monotonic()
    rt = _runtime()
    with project_lock(options.root, options.project, notify=progress):
        stack, plan, desired, notes = plan_up(
            options, strict_ports=strict_ports, runtime=rt, claim=True
        )
        for note in notes:
            progress(note)
        stack.state.save()
        observed = rt.observe(options.project)
        outcomes = Executor(stack, rt, plan, desired, observed, progress, timeout).run()
        seed = stack.profile.seed or seed_protected
        _after_ready(stack, seed=seed, progress=progress)
    return UpResult(
        project=options.project,
        profile=stack.profile.name,
        plan=plan,
        outcomes=outcomes,
        notes=notes,
        seconds=time.monotonic() - started,
    )


def _after_ready(stack: Stack, *, seed: bool, progress: Progress) -> None:
    """One-shot init steps: they complete, they are not services that must keep running."""
    if not (seed and stack.profile.dev_bypass):
        return
    import psycopg

    try:
        with psycopg.connect(stack.endpoints.database_url, autocommit=True, connect_timeout=5) as c:
            c.execute(
                "INSERT INTO users (id, email, name, role, approved, age_verified, tos_accepted) "
                "VALUES (%s, 'dev@localhost', 'Local Dev User', 'admin', true, true, true) "
                "ON CONFLICT (id) DO UPDATE SET role = 'admin', approved = true, "
                "age_verified = true, tos_accepted = true",
                (DEV_USER_ID,),
            )
    except psycopg.Error as exc:
        progress(f"warning: could not seed the dev-bypass user: {str(exc).splitlines()[0]}")


def _preload_probe_libraries() -> None:
    """Import the probes' client libraries (about 0.15 s of CPU) while the engine creates
    containers, instead of after: the waits on the engine leave the interpreter idle."""
    import importlib

    for name in ("psycopg", "httpx"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


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
    ) -> None:
        self.stack = stack
        self.rt = runtime
        self.plan = plan
        self.desired = {d.service: d for d in desired}
        self.observed = observed
        self.progress = progress
        self.timeout = timeout
        self.settled = {s: threading.Event() for s in self.desired}
        self.ready: set[str] = set()
        self.container_ids: dict[str, str] = {}
        self.failed: dict[str, DevenvError] = {}

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
            for s in services:
                try:
                    outcomes.append(futures[s].result())
                except DevenvError as exc:
                    self.failed[s] = exc
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
            self.settled[dep].wait()
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
            info = images.build(
                self.rt,
                self.stack.options.root,
                d.image,
                context=_backend_context(self.stack, self.stack.project.service(d.service)),
                progress=self.progress,
            )
            del info
        for name, labels in d.volumes:
            if self.observed.volume(name) is None:
                self.rt.create_volume(name, dict(labels))
        step: Step = next(s for s in self.plan.for_target(d.service) if s.kind not in ("build",))
        current = self.observed.container(d.service)
        if step.kind == "keep":
            if current is not None:
                self.container_ids[d.service] = current.id
            return "kept"
        self._await_dependencies(d)
        self.progress(f"{d.service}: {step.kind} ({step.cause})")
        if step.kind == "start" and current is not None:
            self.rt.start(current.id)
            self.container_ids[d.service] = current.id
            return "started"
        if current is not None:
            self.rt.stop(current.id, timeout=10)
            self.rt.remove(current.id)
        self.container_ids[d.service] = self.rt.run(spec)
        return "recreated" if step.kind == "recreate" else "created"

    def _wait(self, service: str, probe: Probe, container_id: str | None) -> str:
        from devenv.probes.waiting import wait_ready

        last_check = [0.0]

        def crashed() -> str | None:
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
        # seeding creates the bucket; profile.seed is already false for a protected provider
        # unless the profile allows it
        create = service == "objectstore" and self.stack.profile.seed
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


# --- down --------------------------------------------------------------------------------


@dataclass
class DownResult:
    removed: list[str]
    volumes_removed: list[str]
    volumes_kept: list[str]


def down(options: Options, *, volumes: bool, progress: Progress = _quiet) -> DownResult:
    rt = _runtime()
    with project_lock(options.root, options.project, notify=progress):
        observed = rt.observe(options.project)

        def drop(cid: str, name: str) -> str:
            rt.stop(cid, timeout=10)
            rt.remove(cid)
            return name

        with ThreadPoolExecutor(max_workers=4) as pool:
            removed = list(pool.map(lambda c: drop(c.id, c.name), observed.containers))
        gone: list[str] = []
        kept = [v.name for v in observed.volumes]
        if volumes:
            for v in observed.volumes:
                rt.remove_volume(v.name)
                gone.append(v.name)
            kept = []
            with port_claims(options.project) as claims:
                claims.release()
    return DownResult(removed=sorted(removed), volumes_removed=gone, volumes_kept=kept)


# --- status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    provider: str
    state: str
    healthy: bool
    image: str
    url: str
    detail: str


def status(options: Options, *, show_secrets: bool = False) -> dict[str, Any]:
    rt = _runtime()
    observed = rt.observe(options.project)
    stack = resolve_stack(options, observed=observed, settle_ports=False)
    from devenv.config.secrets import mask_url

    urls = {
        "postgres": stack.endpoints.database_url,
        "objectstore": probe_for(stack, "objectstore").endpoint,
        "backend": stack.endpoints.backend_url,
    }

    def one(service: str) -> ServiceStatus:
        local = stack.local(service)
        container = observed.container(service) if local else None
        state = "external" if not local else (container.state if container else "absent")
        healthy = False
        detail = ""
        if state in ("running", "external"):
            try:
                detail = probe_for(stack, service).attempt()
                healthy = True
            except Exception as exc:
                detail = str(getattr(exc, "message", exc)).splitlines()[0]
        elif container is not None and state == "exited":
            detail = f"exited with code {container.exit_code}"
        url = urls[service]
        return ServiceStatus(
            name=service,
            provider=stack.profile.binding(service).provider,
            state=state,
            healthy=healthy,
            image=container.image if container else "",
            url=url if show_secrets else mask_url(url),
            detail=detail,
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        services = list(pool.map(one, SERVICES))
    return {
        "schema_version": SCHEMA_VERSION,
        "project": options.project,
        "profile": stack.profile.name,
        "services": [s.__dict__ for s in services],
    }


def logs(options: Options, service: str | None, *, follow: bool, tail: int = 100) -> Iterator[str]:
    if service is not None and service not in SERVICES:
        raise ConfigError(f"unknown service {service!r}", hint=f"use one of: {', '.join(SERVICES)}")
    rt = _runtime()
    observed = rt.observe(options.project)
    targets = [c for c in observed.containers if service is None or c.service == service]
    if not targets:
        raise RefusedError(
            f"no container for {service or 'this project'} (project {options.project})",
            hint="run `devenv up` first",
        )
    if follow and len(targets) == 1:
        yield from rt.follow_logs(targets[0].id)
        return
    for c in targets:
        for line in rt.logs(c.id, tail=tail).splitlines():
            yield f"{c.service} | {line}"


# --- checks and report -------------------------------------------------------------------


def service_checks(stack: Stack) -> list[CheckResult]:
    """The readiness facts the phase registry reads: one attempt each, in parallel."""
    from devenv.checks import ids

    def attempt(service: str) -> tuple[str, bool, str]:
        try:
            return service, True, probe_for(stack, service).attempt()
        except Exception as exc:
            return service, False, str(getattr(exc, "message", exc)).splitlines()[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = {s: (ok, d) for s, ok, d in pool.map(attempt, SERVICES)}
        migrations = pool.submit(_migrations_check, stack).result()
    out = [
        CheckResult(ids.POSTGRES_READY, ids.CHECK_NAMES[ids.POSTGRES_READY], *results["postgres"]),
        migrations,
        CheckResult(
            ids.OBJECTSTORE_READY, ids.CHECK_NAMES[ids.OBJECTSTORE_READY], *results["objectstore"]
        ),
        CheckResult(ids.BACKEND_HEALTH, ids.CHECK_NAMES[ids.BACKEND_HEALTH], *results["backend"]),
    ]
    from devenv.config.secrets import redact

    secrets = stack.secrets()
    return [CheckResult(c.id, c.name, c.ok, redact(c.detail, secrets), c.skipped) for c in out]


def _migrations_check(stack: Stack) -> CheckResult:
    from devenv.checks import ids

    name = ids.CHECK_NAMES[ids.POSTGRES_MIGRATIONS]
    try:
        import psycopg

        with psycopg.connect(stack.endpoints.database_url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*), max(version) FROM _sqlx_migrations WHERE success"
            ).fetchone()
    except Exception as exc:
        return CheckResult(ids.POSTGRES_MIGRATIONS, name, False, str(exc).splitlines()[0])
    count, latest = row if row else (0, None)
    if not count:
        return CheckResult(
            ids.POSTGRES_MIGRATIONS, name, False, "expected applied migrations, got none"
        )
    return CheckResult(ids.POSTGRES_MIGRATIONS, name, True, f"{count} applied, latest {latest}")


def run_checks(options: Options, *, scaffold: bool = True) -> tuple[Stack, list[CheckResult]]:
    from devenv.checks.contract import run_contract_checks
    from devenv.checks.scaffold import run_scaffold_checks

    stack = resolve_stack(options, settle_ports=False)

    def object_exists(key: str) -> bool:
        from devenv.probes.base import S3Client

        with S3Client(stack.endpoints.storage) as s3:
            return s3.get(key) is not None

    with ThreadPoolExecutor(max_workers=2) as pool:
        services = pool.submit(service_checks, stack)
        contract = pool.submit(
            run_contract_checks,
            stack.endpoints.backend_url,
            bypass_expected=stack.profile.dev_bypass,
            object_exists=object_exists,
        )
        results = services.result() + contract.result()
    if scaffold:
        context = _backend_context(stack, stack.project.service("backend"))
        if stack.profile.binding("backend").provider == "external":
            context = None
        results += run_scaffold_checks(context)
    from devenv.config.secrets import redact

    secrets = stack.secrets()
    return stack, [
        CheckResult(c.id, c.name, c.ok, redact(c.detail, secrets), c.skipped) for c in results
    ]


def render_report(
    options: Options, *, fmt: str, registry: Path | None = None, scaffold: bool = False
) -> str:
    from datetime import UTC, datetime

    from devenv.phases.evaluate import evaluate
    from devenv.phases.registry import load_registry

    reg = load_registry(registry)
    stack, checks = run_checks(options, scaffold=scaffold)
    evaluation = evaluate(reg, stack.profile, checks)
    now = datetime.now(UTC)
    if fmt == "json":
        from devenv.report.json_report import dumps, to_json

        return dumps(
            to_json(evaluation, profile_name=stack.profile.name, checks=checks, generated_at=now)
        )
    if fmt == "markdown":
        from devenv.report.markdown import render_markdown

        text: str = render_markdown(
            evaluation, profile_name=stack.profile.name, checks=checks, generated_at=now
        )
        return text
    from devenv.report.table import render_table

    return render_table(evaluation, profile_name=stack.profile.name, checks=checks)


def build_images(options: Options, *, progress: Progress = _quiet) -> list[str]:
    """Build every stand-in image that is missing or stale; report what each service uses."""
    from devenv.images import build as images

    rt = _runtime()
    stack = resolve_stack(options, settle_ports=False)
    lines: list[str] = []
    images.ensure_base(rt, progress)
    pending = []
    for svc in stack.project.services:
        if not stack.local(svc.name):
            continue
        choice = _image_choice(stack, rt, svc)
        if choice.present:
            lines.append(f"{svc.name}: {choice.ref} present")
        else:
            pending.append((svc, choice))

    def one(item: tuple[ServiceSpec, ImageChoice]) -> str:
        svc, choice = item
        images.build(
            rt, options.root, choice, context=_backend_context(stack, svc), progress=progress
        )
        return f"{svc.name}: built {choice.ref}"

    with ThreadPoolExecutor(max_workers=3) as pool:
        lines += list(pool.map(one, pending))
    return lines
