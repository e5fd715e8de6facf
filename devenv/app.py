"""Use cases: up, down, status, logs, check, report. Wiring only; adapters do the I/O."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devenv.errors import ConfigError, RefusedError
from devenv.execute import (
    Executor,
    ServiceOutcome,
    applied_now,
    backend_build,
    backend_context,
    desired_state,
    image_choice,
    migration_gate,
    migration_source,
    probe_for,
    removed_causes,
)
from devenv.migrations import MigrationSet
from devenv.model import SERVICES, CheckResult, ServiceSpec
from devenv.plan import Desired, ImageChoice, Plan, reconcile
from devenv.runtime.base import Observed, ObservedContainer, Progress, Runtime
from devenv.snapshot.service import after_up as golden_after_up
from devenv.stack import Options, Stack, load_config, resolve_stack
from devenv.state import image_claims, port_claims, project_lock

if TYPE_CHECKING:
    from devenv.checks.services import ServiceState

DEV_USER_ID = "00000000-0000-0000-0000-000000000001"
SCHEMA_VERSION = 1


def _quiet(_: str) -> None:
    return None


# --- up ----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Planned:
    """One observation and the plan made from it: what `--dry-run` prints and `up` executes."""

    stack: Stack
    observed: Observed
    desired: list[Desired]
    plan: Plan
    notes: list[str]
    runtime: Runtime
    migrations: MigrationSet | None = None  # what the backend source accepts, when known


def plan_up(
    options: Options,
    *,
    strict_ports: bool = False,
    runtime: Runtime | None = None,
    claim: bool = False,
) -> Planned:
    """Observe once and plan; only a real `up` (claim=True) records its ports machine-wide."""
    # Config errors first: a typo is reported as such even when the engine is down.
    config = load_config(options)
    rt = runtime or _runtime()
    observed = rt.observe(options.project)
    notes: list[str] = []
    stack = resolve_stack(
        options,
        config=config,
        observed=observed,
        strict_ports=strict_ports,
        holder=rt.port_holder,
        notes=notes,
        claim_ports=claim,
    )
    desired = desired_state(stack, rt)
    plan = reconcile(desired, observed, removed_cause=removed_causes(stack))
    known = migration_source(stack)[0] if stack.local("backend") else None
    if known is not None:
        from devenv.migrations import verify_in_plan

        plan = verify_in_plan(
            plan,
            known,
            applied_now(stack, observed),
            project=stack.name,
            external=not stack.local("postgres"),
        )
    return Planned(stack, observed, desired, plan, notes, rt, known)


def up(
    options: Options,
    *,
    progress: Progress = _quiet,
    strict_ports: bool = False,
    timeout: float = 90.0,
    seed_protected: bool = False,
) -> UpResult:
    started = time.monotonic()
    with project_lock(options.root, options.project, notify=progress):
        planned = plan_up(options, strict_ports=strict_ports, claim=True)
        stack, plan, rt = planned.stack, planned.plan, planned.runtime
        for note in planned.notes:
            progress(note)
        stack.state.save()
        _claim_backend_image(planned)
        seed = stack.profile.seed or seed_protected
        gate = None
        if planned.migrations is not None:
            gate = migration_gate(stack, planned.migrations, progress=progress)
        outcomes = Executor(
            stack,
            rt,
            plan,
            planned.desired,
            planned.observed,
            progress,
            timeout,
            seed=seed,
            verify_migrations=gate,
        ).run()
        if not plan.noop:  # an unchanged stack was seeded when it was made
            _after_ready(stack, seed=seed, progress=progress)
        golden_after_up(stack, rt, changed=not plan.noop, progress=progress)  # issue 14
    return UpResult(
        project=options.project,
        profile=stack.profile.name,
        plan=plan,
        outcomes=outcomes,
        notes=planned.notes,
        seconds=time.monotonic() - started,
    )


def _claim_backend_image(planned: Planned) -> None:
    """Record machine-wide which backend image this project runs, so that a build of the same
    source in any checkout never prunes it."""
    backend = next((d for d in planned.desired if d.service == "backend"), None)
    if backend is None:
        return
    build = backend_build(planned.stack, planned.stack.project.service("backend"))
    with image_claims(planned.stack.name) as claims:
        claims.claim(backend.image.ref, source=str(build.source) if build else "")


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
            with image_claims(options.project) as images:
                images.release()
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
    env: dict[str, str]  # the profile's extra backend environment, secret values masked


def status(options: Options, *, show_secrets: bool = False) -> dict[str, Any]:
    config = load_config(options)  # a typo is a config error even with the engine down
    rt = _runtime()
    observed = rt.observe(options.project)
    stack = resolve_stack(options, config=config, settle_ports=False)
    from devenv.checks.services import running_check
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
        elif container is not None:
            detail = running_check(_service_state(service, container, rt)).detail
        url = urls[service]
        return ServiceStatus(
            name=service,
            provider=stack.profile.binding(service).provider,
            state=state,
            healthy=healthy,
            image=container.image if container else "",
            url=url if show_secrets else mask_url(url),
            detail=detail,
            env=_shown_env(stack, show_secrets) if service == "backend" and local else {},
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        services = list(pool.map(one, SERVICES))
    from devenv.config.secrets import redact

    secrets = stack.secrets()
    services = [replace(s, detail=redact(s.detail, secrets)) for s in services]
    return {
        "schema_version": SCHEMA_VERSION,
        "project": options.project,
        "profile": stack.profile.name,
        "services": [s.__dict__ for s in services],
    }


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
    """Applied against known: every applied migration is the backend source's own (same
    version and checksum, none failed); pending ones are listed. Without a known source (an
    external backend, an image) it can only count rows, and says why."""
    from devenv.checks import ids
    from devenv.migrations import compare, summary
    from devenv.probes.base import ProbeFailure
    from devenv.probes.sqlx import read_applied

    def result(ok: bool, detail: str) -> CheckResult:
        name = ids.CHECK_NAMES[ids.POSTGRES_MIGRATIONS]
        return CheckResult(ids.POSTGRES_MIGRATIONS, name, ok, detail)

    try:
        known, why = migration_source(stack)
        applied = read_applied(stack.endpoints.database_url)
    except (ProbeFailure, ConfigError) as exc:
        return result(False, exc.message)
    if not applied:
        return result(False, "expected applied migrations, got none")
    if known is None:
        latest = max((r.version for r in applied if r.success), default=None)
        return result(True, f"{len(applied)} applied, latest {latest} (not compared: {why})")
    verdict = compare(known, applied)
    return result(verdict.ok, summary(verdict, str(known.source)))


def _service_state(
    service: str, container: ObservedContainer | None, rt: Runtime | None
) -> ServiceState:
    """What the engine says about a local service; its last log lines when it is not running."""
    from devenv.checks.services import ServiceState

    if container is None:
        return ServiceState(service)
    logs = ""
    if container.state != "running" and rt is not None:
        logs = rt.logs(container.id, tail=40)
    return ServiceState(
        service,
        state=container.state,
        exit_code=container.exit_code,
        restart_count=container.restart_count,
        logs=logs,
    )


def _external_state(stack: Stack, service: str) -> ServiceState:
    """Whether an external provider accepts a TCP connection (credentials are not involved)."""
    import socket
    from urllib.parse import urlsplit

    from devenv.checks.services import ServiceState

    url = {
        "postgres": stack.endpoints.database_url,
        "objectstore": stack.endpoints.storage.endpoint,
        "backend": stack.endpoints.backend_url,
    }[service]
    parts = urlsplit(url)
    default = {"postgres": 5432, "postgresql": 5432, "https": 443}.get(parts.scheme, 80)
    host, port = parts.hostname or "", parts.port or default
    endpoint = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=3):
            return ServiceState(service, external=True, endpoint=endpoint, reachable=True)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        return ServiceState(service, external=True, endpoint=endpoint, error=why)


def running_checks(stack: Stack) -> list[CheckResult]:
    """`<service>.running` for each service: the root causes other checks are skipped by."""
    from devenv.checks.services import running_check

    local = [s for s in SERVICES if stack.local(s)]
    rt = _runtime() if local else None
    observed = rt.observe(stack.name) if rt is not None else None

    def one(service: str) -> CheckResult:
        if service not in local:
            return running_check(_external_state(stack, service))
        container = observed.container(service) if observed else None
        return running_check(_service_state(service, container, rt))

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(one, SERVICES))


def run_checks(options: Options, *, scaffold: bool = True) -> tuple[Stack, list[CheckResult]]:
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

    stack = resolve_stack(options, settle_ports=False)
    # a bad contract file is a configuration error, reported before the engine is asked
    contract = load_contract(
        contract_file(options.root, stack.profile),
        display=lambda p: display_path(p, options.root),
    )
    running = running_checks(stack)
    down = running_by_service(running)

    def object_exists(key: str) -> bool:
        from devenv.probes.base import S3Client

        with S3Client(stack.endpoints.storage) as s3:
            return s3.get(key) is not None

    with ThreadPoolExecutor(max_workers=2) as pool:
        services = pool.submit(service_checks, stack)
        routes = pool.submit(
            run_contract_checks,
            contract,
            stack.endpoints.backend_url,
            bypass_expected=stack.profile.dev_bypass,
            object_exists=object_exists,
            running=down,
        )
        ready = apply_root_causes(services.result(), ids.SERVICE_CHECK_NEEDS, down)
        results = running + ready + routes.result()
    if scaffold:
        context = backend_context(stack, stack.project.service("backend"))
        if stack.profile.binding("backend").provider == "external":
            context = None
        target = cargo_target_dir(context, options.root / "backend") if context else None
        results += run_scaffold_checks(context, target_dir=target)
    from devenv.config.secrets import redact

    secrets = stack.secrets()
    return stack, [replace(c, detail=redact(c.detail, secrets)) for c in results]


@dataclass(frozen=True)
class Report:
    """The rendered document, and what makes `devenv report` exit 1."""

    text: str
    failed: tuple[str, ...]  # required checks that failed
    regressed: tuple[str, ...]  # phases marked complete whose live checks fail


def render_report(
    options: Options, *, fmt: str, registry: Path | None = None, scaffold: bool = False
) -> Report:
    from datetime import UTC, datetime

    from devenv.phases.evaluate import evaluate
    from devenv.phases.registry import load_registry

    reg = load_registry(registry)
    stack, checks = run_checks(options, scaffold=scaffold)
    evaluation = evaluate(reg, stack.profile, checks)
    failed = tuple(c.id for c in checks if c.blocking)
    regressed = tuple(
        p.id for p in evaluation.phases if "regressed" in (p.local.status, p.production.status)
    )
    now = datetime.now(UTC)
    name = stack.profile.name
    if fmt == "json":
        from devenv.report.json_report import dumps, to_json

        text = dumps(to_json(evaluation, profile_name=name, checks=checks, generated_at=now))
    elif fmt == "markdown":
        from devenv.report.markdown import render_markdown

        text = render_markdown(evaluation, profile_name=name, checks=checks, generated_at=now)
    else:
        from devenv.report.table import render_table

        text = render_table(evaluation, profile_name=name, checks=checks)
    return Report(text, failed, regressed)


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
        choice = image_choice(stack, rt, svc)
        if choice.present:
            lines.append(f"{svc.name}: {choice.ref} present")
        else:
            pending.append((svc, choice))

    def one(item: tuple[ServiceSpec, ImageChoice]) -> str:
        svc, choice = item
        images.build(rt, options.root, choice, backend=backend_build(stack, svc), progress=progress)
        return f"{svc.name}: built {choice.ref}"

    with ThreadPoolExecutor(max_workers=3) as pool:
        lines += list(pool.map(one, pending))
    return lines
