"""Use cases: up, restart, watch, down, status, logs, checks, report, images. Wiring only.

Each takes Options (where and how) and returns a typed result; the CLI (or another front end)
picks the renderer. The engine and the service clients are injectable (`adapters`)
so that unit tests drive the use cases with the fakes of devenv.runtime.fake. Every secret a
use case learns goes into the caller's `secrets` registry, which the renderer redacts with.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.config.load import Config, Options, load_config
from devenv.config.secrets import Secrets
from devenv.errors import ConfigError, RefusedError
from devenv.model import SERVICES, CheckResult
from devenv.runtime.base import Observed, Progress, Runtime

if TYPE_CHECKING:
    from devenv.execute import Outcome
    from devenv.observe import Observation
    from devenv.phases.evaluate import Evaluation
    from devenv.plan import Plan
    from devenv.probes.clients import Clients, ClientsFor
    from devenv.stack import Stack
    from devenv.watch.cycle import Cycle


def _quiet(_: str) -> None:
    return None


def known_service(service: str) -> str:
    """A service of the stack, or a ConfigError before anything is read or asked."""
    if service not in SERVICES:
        raise ConfigError(f"unknown service {service!r}", hint=f"use one of: {', '.join(SERVICES)}")
    return service


def docker_runtime() -> Runtime:
    from devenv.runtime.docker import DockerRuntime

    return DockerRuntime()


def stack_clients(stack: Stack) -> Clients:
    from devenv.probes.clients import StackClients

    return StackClients(stack)


@dataclass(frozen=True)
class Adapters:
    """What the use cases talk to: the engine and the stack's services (fakes in tests)."""

    runtime: Callable[[], Runtime] = docker_runtime
    clients: ClientsFor = stack_clients


REAL = Adapters()


# --- up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One observation and the plan made from it: what `--dry-run` prints and `up` executes."""

    config: Config
    observation: Observation
    plan: Plan
    runtime: Runtime
    clients: ClientsFor


@dataclass(frozen=True)
class ServiceOutcome:
    service: str
    action: str  # created | recreated | started | restarted | kept | external
    ready: bool
    detail: str
    seconds: float


@dataclass(frozen=True)
class UpResult:
    project: str
    profile: str
    plan: Plan
    outcomes: tuple[Outcome, ...]
    seconds: float

    @property
    def noop(self) -> bool:
        return self.plan.noop

    @property
    def notes(self) -> tuple[str, ...]:
        return self.plan.notes

    @property
    def services(self) -> list[ServiceOutcome]:
        """Per service: what happened to its container and what its probe said."""
        actions = {"create": "created", "recreate": "recreated", "start": "started"}
        actions |= {"restart": "restarted", "keep": "kept"}
        found: dict[str, ServiceOutcome] = {}
        kind: dict[str, str] = {}
        for o in self.outcomes:
            s = o.step
            if s.kind in actions and s.target not in kind:
                kind[s.target] = actions[s.kind]
            elif s.kind in ("wait-ready", "verify-external"):
                action = "external" if s.kind == "verify-external" else kind.get(s.target, "")
                ready = o.status == "done"
                found[s.target] = ServiceOutcome(s.target, action, ready, o.detail, o.seconds)
        return [found[s] for s in SERVICES if s in found]


def plan_up(
    options: Options,
    *,
    strict_ports: bool = False,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> Planned:
    """Observe once and plan; nothing is written, no lock is taken (`up --dry-run`)."""
    from devenv.observe import observe
    from devenv.plan import reconcile

    # Config errors first: a typo is reported as such even when the engine is down.
    config = load_config(options)
    runtime = adapters.runtime()
    observation = observe(config, runtime, adapters.clients)
    plan = reconcile(config, observation, strict_ports=strict_ports)
    if secrets is not None and plan.stack is not None:
        secrets.add(*plan.stack.secrets())
    return Planned(config, observation, plan, runtime, adapters.clients)


def up(
    options: Options,
    *,
    progress: Progress = _quiet,
    strict_ports: bool = False,
    timeout: float = 90.0,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
    cancel: threading.Event | None = None,
) -> UpResult:
    """Converge the stack and verify it: the plan of one observation, executed under the
    project's lock. Raises the plan's refusal before anything changes, or the first failure
    (a local one before an external provider's; the others are said as progress lines)."""
    from devenv.state import project_lock

    started = time.monotonic()
    with project_lock(options.root, options.project, notify=progress):
        planned = plan_up(
            options,
            strict_ports=strict_ports,
            adapters=adapters,
            secrets=secrets,
        )
        plan = planned.plan
        for note in plan.notes:
            progress(note)
        if plan.error is not None:
            raise plan.error
        outcomes = _execute(planned, progress=progress, timeout=timeout, cancel=cancel)
    return UpResult(
        project=options.project,
        profile=planned.config.profile.name,
        plan=plan,
        outcomes=tuple(outcomes),
        seconds=time.monotonic() - started,
    )


def _execute(
    planned: Planned, *, progress: Progress, timeout: float, cancel: threading.Event | None
) -> list[Outcome]:
    from devenv.execute import Executor, failures
    from devenv.handlers import Handlers

    plan = planned.plan
    assert plan.stack is not None
    cancel = cancel or threading.Event()
    handlers = Handlers(
        plan,
        planned.observation,
        planned.runtime,
        planned.clients(plan.stack),
        progress=progress,
        timeout=timeout,
        cancel=cancel,
    )
    outcomes = Executor(plan.steps, handlers.table(), cancel=cancel).run()
    errors = failures(outcomes)
    if errors:
        for other in errors[1:]:
            progress(f"also: {other.one_line()}")
        raise errors[0]
    return outcomes


def restart(
    options: Options,
    service: str,
    *,
    progress: Progress = _quiet,
    timeout: float = 90.0,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> UpResult:
    """Stop and start one local service's container, then wait until it answers again."""
    from devenv.observe import Observation, current
    from devenv.plan import plan_restart
    from devenv.state import load_state, project_lock

    started = time.monotonic()
    known_service(service)
    config = load_config(options)
    runtime = adapters.runtime()
    with project_lock(options.root, options.project, notify=progress):
        engine, stack = current(config, runtime)
        if secrets is not None:
            secrets.add(*stack.secrets())
        plan = plan_restart(stack, engine, service)
        if plan.error is not None:
            raise plan.error
        observation = Observation(engine=engine, state=load_state(options.root, options.project))
        planned = Planned(config, observation, plan, runtime, adapters.clients)
        outcomes = _execute(planned, progress=progress, timeout=timeout, cancel=None)
    return UpResult(options.project, config.profile.name, plan, tuple(outcomes),
                    time.monotonic() - started)  # fmt: skip


# --- watch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchResult:
    project: str
    cargo_profile: str
    cycles: int
    serving: str | None  # the source fingerprint watch last put into the backend, if any


def watch(
    options: Options,
    *,
    report: Callable[[Cycle], None],
    progress: Progress = _quiet,
    timeout: float = 60.0,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
    stop: threading.Event | None = None,
) -> WatchResult:
    """`up` (a no-op when the stack is up), then serve and verify each save of the backend
    checkout until SIGINT (or `stop`); the stack stays up on the last good build."""
    from devenv.checks.contract import contract_file
    from devenv.checks.spec import load_contract
    from devenv.config.compose import display_path
    from devenv.errors import Interrupted
    from devenv.observe import current
    from devenv.watch.loop import Watcher
    from devenv.watch.paths import refusal, watch_profile

    config = load_config(options)
    refused = refusal(config)
    if refused is not None:
        raise refused
    contract = load_contract(
        contract_file(options.root, config.profile),
        display=lambda p: display_path(p, options.root),
    )
    up(options, progress=progress, timeout=timeout, adapters=adapters, secrets=secrets)
    runtime = adapters.runtime()
    stack = current(config, runtime)[1]
    watcher = Watcher(
        config,
        stack,
        runtime,
        adapters.clients(stack),
        contract,
        profile=watch_profile(config),
        progress=progress,
        report=report,
        secrets=secrets or Secrets(),
        timeout=timeout,
    )
    with contextlib.suppress(Interrupted):
        watcher.run(stop)
    return WatchResult(options.project, watcher.profile, watcher.cycles, watcher.serving)


# --- down ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownResult:
    removed: list[str]
    volumes_removed: list[str]
    volumes_kept: list[str]
    snapshots_removed: list[str] = field(default_factory=list)


def down(
    options: Options,
    *,
    volumes: bool,
    progress: Progress = _quiet,
    adapters: Adapters = REAL,
) -> DownResult:
    """Remove the project's containers; with `volumes`, its data, its snapshots (of that
    data) and its machine-wide claims too. Works from any directory: the project's lock is
    taken in the checkout its labels name (`devenv ls`), and none is made for a project that
    has nothing on the engine."""
    from devenv.snapshot.store import Store
    from devenv.stacks import checkout_of
    from devenv.state import image_claims, project_lock, release_ports, state_dir

    runtime = adapters.runtime()
    seen = runtime.observe(options.project)
    root = checkout_of(seen) or options.root
    if root != options.root:
        progress(f"project {options.project} lives in {root}")
    nothing = not (seen.containers or seen.volumes or state_dir(root, options.project).is_dir())
    lock = (
        contextlib.nullcontext()
        if nothing
        else project_lock(root, options.project, notify=progress)
    )
    with lock:
        observed = runtime.observe(options.project)

        def drop(cid: str, name: str) -> str:
            runtime.stop(cid, timeout=10)
            runtime.remove(cid)
            return name

        with ThreadPoolExecutor(max_workers=4) as pool:
            removed = list(pool.map(lambda c: drop(c.id, c.name), observed.containers))
        gone: list[str] = []
        kept = [v.name for v in observed.volumes]
        snapshots: list[str] = []
        if volumes:
            for v in observed.volumes:
                runtime.remove_volume(v.name)
                gone.append(v.name)
            kept = []
            snapshots = Store(options.project).destroy()
            release_ports(options.project)
            with image_claims(options.project) as images:
                images.release()
    return DownResult(sorted(removed), gone, kept, snapshots)


# --- status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    provider: str
    state: str  # a container state, "absent" or "external"
    healthy: bool
    image: str
    url: str  # masked unless asked for secrets
    detail: str
    env: dict[str, str] = field(default_factory=dict)  # extra backend env, secrets masked
    latency_ms: float | None = None  # the probe attempt's round trip; None when none ran


@dataclass(frozen=True)
class StatusResult:
    project: str
    profile: str
    services: tuple[ServiceStatus, ...]

    @property
    def unhealthy(self) -> tuple[ServiceStatus, ...]:
        return tuple(s for s in self.services if not s.healthy)


@dataclass(frozen=True)
class StatusScan:
    """One look at the engine and the state file: what each service's status is read from."""

    project: str
    stack: Stack
    engine: Observed
    runtime: Runtime
    clients: Clients

    @property
    def profile(self) -> str:
        return self.stack.profile.name


def status_scan(
    options: Options, *, adapters: Adapters = REAL, secrets: Secrets | None = None
) -> StatusScan:
    """Read the configuration and the engine once; probe nothing yet."""
    from devenv.observe import current

    config = load_config(options)  # a typo is a config error even with the engine down
    runtime = adapters.runtime()
    engine, stack = current(config, runtime)
    if secrets is not None:
        secrets.add(*stack.secrets())
    return StatusScan(options.project, stack, engine, runtime, adapters.clients(stack))


def service_status(scan: StatusScan, service: str, *, show_secrets: bool = False) -> ServiceStatus:
    """One service's status: its probe attempted once (timed) when it runs, else why not.

    Each service's status is independent of the others', so that a front end can show the
    ones that answer while another probe still waits (`status` runs all three in parallel)."""
    from devenv.checks.services import running_check
    from devenv.config.secrets import mask_url
    from devenv.observe import attempt, service_state

    stack = scan.stack
    local = stack.local(service)
    container = scan.engine.container(service) if local else None
    state = "external" if not local else (container.state if container else "absent")
    healthy, detail, latency = False, "", None
    if state in ("running", "external"):
        started = time.perf_counter()
        healthy, detail = attempt(scan.clients.probe(service, write=False))  # changes nothing
        latency = (time.perf_counter() - started) * 1000
    elif container is not None:
        detail = running_check(service_state(service, container, scan.runtime)).detail
    url = stack.url(service)
    return ServiceStatus(
        name=service,
        provider=stack.profile.binding(service).provider,
        state=state,
        healthy=healthy,
        image=container.image if container else "",
        url=url if show_secrets else mask_url(url),
        detail=detail,
        env=_shown_env(stack, show_secrets) if service == "backend" and local else {},
        latency_ms=latency,
    )


def status(
    options: Options,
    *,
    show_secrets: bool = False,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> StatusResult:
    """Each service: provider, state, health (one probe attempt, all in parallel), URL."""
    scan = status_scan(options, adapters=adapters, secrets=secrets)
    with ThreadPoolExecutor(max_workers=3) as pool:
        services = tuple(
            pool.map(lambda s: service_status(scan, s, show_secrets=show_secrets), SERVICES)
        )
    return StatusResult(options.project, scan.profile, services)


def _shown_env(stack: Stack, show_secrets: bool) -> dict[str, str]:
    from devenv.config.profiles import backend_env
    from devenv.config.secrets import MASK, has_userinfo, mask_url

    secret = set() if show_secrets else stack.profile.binding("backend").secret_keys
    return {
        name: (mask_url(value) if has_userinfo(value) else MASK)
        if f"env.{name}" in secret
        else value
        for name, value in backend_env(stack.profile).items()
    }


# --- logs ----------------------------------------------------------------------------------


def logs(
    options: Options,
    service: str | None,
    *,
    follow: bool,
    tail: int = 100,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> Iterator[str]:
    """Log lines of one service or all (`service | line`); `follow` streams one service.

    The stack's credentials join `secrets` when the profile loads (a broken profile does not
    keep the logs from being read)."""
    from devenv.errors import DevenvError
    from devenv.observe import current

    if service is not None:
        known_service(service)
    if secrets is not None:
        with contextlib.suppress(DevenvError):
            secrets.add(*current(load_config(options), None)[1].secrets())
    runtime = adapters.runtime()
    observed = runtime.observe(options.project)
    targets = [c for c in observed.containers if service is None or c.service == service]
    if not targets:
        raise RefusedError(
            f"no container for {service or 'this project'} (project {options.project})",
            hint="run `devenv up` first",
        )
    if follow and len(targets) == 1:
        yield from runtime.follow_logs(targets[0].id)
        return
    for c in targets:
        for line in runtime.logs(c.id, tail=tail).splitlines():
            yield f"{c.service} | {line}"


# --- checks and report ---------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRun:
    profile: str
    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """Required checks that failed (what makes `check` exit 1)."""
        return tuple(c for c in self.results if c.blocking)

    @property
    def advisory_failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.results if c.failed and not c.blocking)


def run_checks(
    options: Options,
    *,
    scaffold: bool = True,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> CheckRun:
    """Every check of this run: services running, readiness, the route contract, scaffold.

    Checks that need a service which is not running are skipped with that one root cause.
    """
    from devenv.checks import ids
    from devenv.checks.contract import contract_file, run_contract_checks
    from devenv.checks.scaffold import run_scaffold_checks
    from devenv.checks.services import apply_root_causes, running_by_service
    from devenv.checks.spec import load_contract
    from devenv.config.compose import display_path
    from devenv.images.build import cargo_target_dir
    from devenv.observe import current

    config = load_config(options)
    # a bad contract file is a configuration error, reported before the engine is asked
    contract = load_contract(
        contract_file(options.root, config.profile),
        display=lambda p: display_path(p, options.root),
    )
    local = any(config.local(s) for s in SERVICES)
    runtime = adapters.runtime() if local else None
    engine, stack = current(config, runtime)
    if secrets is not None:
        secrets.add(*stack.secrets())
    clients = adapters.clients(stack)
    running = _running_checks(stack, engine, runtime)
    down = running_by_service(running)
    with ThreadPoolExecutor(max_workers=2) as pool:
        services = pool.submit(_service_checks, stack, clients)
        routes = pool.submit(
            run_contract_checks,
            contract,
            stack.endpoints.backend_url,
            bypass_expected=stack.profile.dev_bypass,
            object_exists=clients.object_exists,
            running=down,
        )
        ready = apply_root_causes(services.result(), ids.SERVICE_CHECK_NEEDS, down)
        results = running + ready + routes.result()
    if scaffold:  # the backend's source checkout, when it runs locally
        context = config.backend_context() if config.local("backend") else None
        target = cargo_target_dir(context, options.root / "backend") if context else None
        results += run_scaffold_checks(context, target_dir=target)
    return CheckRun(stack.profile.name, tuple(results))


def _running_checks(stack: Stack, engine: Observed, runtime: Runtime | None) -> list[CheckResult]:
    """`<service>.running` for each service: the root causes other checks are skipped by."""
    from devenv.checks.services import running_check
    from devenv.observe import external_state, service_state

    def one(service: str) -> CheckResult:
        if not stack.local(service):
            return running_check(external_state(stack, service))
        return running_check(service_state(service, engine.container(service), runtime))

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(one, SERVICES))


def _service_checks(stack: Stack, clients: Clients) -> list[CheckResult]:
    """The readiness facts the phase registry reads: one attempt each, in parallel."""
    from devenv.checks import ids
    from devenv.observe import attempt

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = dict(
            zip(SERVICES, pool.map(lambda s: attempt(clients.probe(s)), SERVICES), strict=True)
        )
        migrations = pool.submit(_migrations_check, stack, clients).result()

    def check(check_id: str, service: str) -> CheckResult:
        return CheckResult(check_id, ids.CHECK_NAMES[check_id], *found[service])

    return [
        check(ids.POSTGRES_READY, "postgres"),
        migrations,
        check(ids.OBJECTSTORE_READY, "objectstore"),
        check(ids.BACKEND_HEALTH, "backend"),
    ]


def _migrations_check(stack: Stack, clients: Clients) -> CheckResult:
    """Applied against known: every applied migration is the backend source's own (same
    version and checksum, none failed); pending ones are listed. Without a known source (an
    external backend, an image) it can only count rows, and says why."""
    from devenv.checks import ids
    from devenv.migrations import compare, read_migration_set, summary
    from devenv.probes.base import ProbeFailure

    def result(ok: bool, detail: str) -> CheckResult:
        name = ids.CHECK_NAMES[ids.POSTGRES_MIGRATIONS]
        return CheckResult(ids.POSTGRES_MIGRATIONS, name, ok, detail)

    source = stack.config.migration_source()
    why = "the backend is external" if not stack.local("backend") else source.why
    try:
        known = None
        if stack.local("backend") and source.directory is not None and source.source is not None:
            known = read_migration_set(
                source.directory, source=source.source, display=source.display
            )
        applied = clients.applied_migrations()
    except (ProbeFailure, ConfigError) as exc:
        return result(False, exc.message)
    if not applied:
        return result(False, "expected applied migrations, got none")
    if known is None:
        latest = max((r.version for r in applied if r.success), default=None)
        return result(True, f"{len(applied)} applied, latest {latest} (not compared: {why})")
    verdict = compare(known, applied)
    return result(verdict.ok, summary(verdict, str(known.source)))


@dataclass(frozen=True)
class ReportResult:
    """The phase evaluation from checks run now, and what makes `devenv report` exit 1."""

    profile: str
    checks: tuple[CheckResult, ...]
    evaluation: Evaluation
    generated_at: datetime

    @property
    def failed(self) -> tuple[str, ...]:
        """Required checks that failed."""
        return tuple(c.id for c in self.checks if c.blocking)

    @property
    def regressed(self) -> tuple[str, ...]:
        """Phases the registry marks complete whose live checks fail."""
        return tuple(
            p.id
            for p in self.evaluation.phases
            if "regressed" in (p.local.status, p.production.status)
        )


def report(
    options: Options,
    *,
    registry: Path | None = None,
    scaffold: bool = False,
    adapters: Adapters = REAL,
    secrets: Secrets | None = None,
) -> ReportResult:
    """Which phases can proceed locally and in production, from checks run now."""
    from devenv.phases.evaluate import evaluate
    from devenv.phases.registry import load_registry

    reg = load_registry(registry)
    run = run_checks(options, scaffold=scaffold, adapters=adapters, secrets=secrets)
    config = load_config(options)
    evaluation = evaluate(reg, config.profile, list(run.results))
    return ReportResult(run.profile, run.results, evaluation, datetime.now(UTC))


# --- images --------------------------------------------------------------------------------


def build_images(
    options: Options,
    *,
    progress: Progress = _quiet,
    adapters: Adapters = REAL,
    only: tuple[str, ...] = (),
) -> list[str]:
    """Get each local service's image ahead of time as `up` would (present, else pulled, else
    built, the base first); one line per image says which and why."""
    from devenv.execute import Executor, failures
    from devenv.handlers import Handlers
    from devenv.observe import Observation, observe_images
    from devenv.plan import base_choice, plan_images
    from devenv.state import load_state

    config = load_config(options)
    unknown = [name for name in only if name != "base" and not config.has(name)]
    if unknown:
        raise ConfigError(
            f"unknown image {unknown[0]!r}", hint=f"use base or one of: {', '.join(SERVICES)}"
        )
    runtime = adapters.runtime()
    engine = runtime.observe(config.name)
    facts = observe_images(config, runtime, engine, want_base="base" in only)
    observation = Observation(
        engine=engine,
        state=load_state(options.root, options.project),
        images=facts.images,
        identities=facts.identities,
        registry=facts.registry,
        host=facts.host,
    )
    plan = plan_images(config, observation, only=only)
    for note in plan.notes:
        progress(note)
    if plan.error is not None:
        raise plan.error
    assert plan.stack is not None
    cancel = threading.Event()
    handlers = Handlers(
        plan, observation, runtime, adapters.clients(plan.stack),
        progress=progress, timeout=0, cancel=cancel,
    )  # fmt: skip
    outcomes = Executor(plan.steps, handlers.table(), cancel=cancel).run()
    errors = failures(outcomes)
    if errors:
        for other in errors[1:]:
            progress(f"also: {other.one_line()}")
        raise errors[0]
    lines = [f"{o.step.target}  {o.detail}" for o in outcomes]
    done = {o.step.target for o in outcomes}
    if "base" in only and "base" not in done:
        lines.append(f"base  {base_choice(config, observation).why}")
    for name, desired in plan.desired.items():
        if name not in done and (not only or name in only):
            lines.append(f"{name}  {desired.image.why or desired.image.ref + ' present'}")
    return lines
