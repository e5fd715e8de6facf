"""The dashboard's one door into devenv: every use case the page triggers goes through here.

The rest of devenv/ui/ knows only the view models (views.py), so a change in the use cases'
shape is absorbed in this file. What it calls:
- status: the same observation, probes, URL masking and detail redaction as `devenv status`
  (app.status), one service at a time and timed, so that a slow probe (a backend waiting on a
  dead database) never holds back the row of a service that answers;
- checks: app.run_checks, then the phase evaluation exactly as `devenv report` does it;
- logs: app.logs; up: app.up; restart: stop + start of one container through the Runtime
  protocol, under the project lock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.errors import ConfigError, RefusedError
from devenv.model import SERVICES
from devenv.ui.views import Checked, ServiceView
from devenv.ui.watch import WATCH_FILE

if TYPE_CHECKING:
    from devenv.runtime.base import Observed, Runtime
    from devenv.stack import Options, Stack


@dataclass(frozen=True)
class Observation:
    """One look at the engine and the files, shared by the probes of one status pass."""

    stack: Stack
    observed: Observed
    runtime: Runtime


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", exc)).strip() or type(exc).__name__
    return text.splitlines()[0]


class Adapter:
    services: tuple[str, ...] = SERVICES

    def __init__(self, options: Options, *, registry: Path | None = None) -> None:
        self.options = options
        self.registry = registry
        self._runtime: Runtime | None = None
        self._secrets: frozenset[str] = frozenset()

    @property
    def project(self) -> str:
        return self.options.project

    def validate(self) -> str:
        """Read the profile and compose file once (a typo fails here); the profile's name."""
        from devenv.stack import load_config

        config = load_config(self.options)
        self._remember(config.profile.secrets(), config.state.credentials.values())
        return config.profile.name

    # --- secrets -----------------------------------------------------------------------

    def _remember(self, *groups: Iterable[str]) -> None:
        found = set(self._secrets)
        for group in groups:
            found.update(v for v in group if v)
        for key, value in self.options.environ.items():
            # the same net as the CLI's: credentials handed in by the environment
            if value and len(value) >= 6 and any(w in key for w in ("SECRET", "PASSWORD", "TOKEN")):
                found.add(value)
            if value and key.endswith("_URL") and "@" in value:
                found.add(value)
        self._secrets = frozenset(found)

    def redact(self, text: str) -> str:
        from devenv.config.secrets import redact

        return redact(text, self._secrets)

    # --- status ------------------------------------------------------------------------

    def _engine(self) -> Runtime:
        if self._runtime is None:
            from devenv.runtime.docker import DockerRuntime

            self._runtime = DockerRuntime()
        return self._runtime

    def observe(self) -> Observation:
        from devenv.stack import load_config, resolve_stack

        config = load_config(self.options)
        rt = self._engine()
        observed = rt.observe(self.project)
        stack = resolve_stack(self.options, config=config, settle_ports=False)
        self._remember(stack.secrets())
        return Observation(stack, observed, rt)

    def profile_name(self, observation: Observation) -> str:
        return observation.stack.profile.name

    def probe(self, observation: Observation, service: str) -> ServiceView:
        """One service as `devenv status` shows it, plus how long its probe took."""
        from devenv.app import _service_state
        from devenv.checks.services import running_check
        from devenv.config.secrets import mask_url
        from devenv.execute import probe_for

        stack, observed, rt = observation.stack, observation.observed, observation.runtime
        local = stack.local(service)
        container = observed.container(service) if local else None
        state = "external" if not local else (container.state if container else "absent")
        healthy, detail, latency = False, "", None
        if state in ("running", "external"):
            started = time.perf_counter()
            try:
                detail = probe_for(stack, service).attempt()
                healthy = True
            except Exception as exc:  # a probe's failure is this row's news, not the page's
                detail = _first_line(exc)
            latency = (time.perf_counter() - started) * 1000
        elif container is not None:
            detail = running_check(_service_state(service, container, rt)).detail
        url = {
            "postgres": stack.endpoints.database_url,
            "objectstore": probe_for(stack, "objectstore").endpoint,
            "backend": stack.endpoints.backend_url,
        }[service]
        return ServiceView(
            name=service,
            provider=stack.profile.binding(service).provider,
            state=state,
            healthy=healthy,
            detail=self.redact(detail),
            latency_ms=latency,
            image=container.image if container else "",
            url=self.redact(mask_url(url)),
        )

    # --- checks and report -------------------------------------------------------------

    def run_checks(self) -> Checked:
        """Every check `devenv report` runs (no cargo scaffold checks), and its evaluation."""
        from devenv import app as core
        from devenv.phases.evaluate import evaluate
        from devenv.phases.registry import load_registry

        registry = load_registry(self.registry)
        stack, checks = core.run_checks(self.options, scaffold=False)
        self._remember(stack.secrets())
        evaluation = evaluate(registry, stack.profile, checks)
        return Checked(tuple(checks), evaluation, stack.profile.name)

    # --- logs and actions --------------------------------------------------------------

    def logs(self, service: str, *, tail: int = 200) -> list[str]:
        from devenv import app as core

        prefix = f"{service} | "
        return [
            self.redact(line.removeprefix(prefix).rstrip("\n"))
            for line in core.logs(self.options, service, follow=False, tail=tail)
        ]

    def up(self, progress: Callable[[str], None]) -> str:
        from devenv import app as core

        result = core.up(self.options, progress=lambda line: progress(self.redact(line)))
        if result.noop:
            return f"nothing to do: {result.project} is up to date and healthy"
        return f"stack {result.project} is up (profile {result.profile}) in {result.seconds:.1f} s"

    def restart(self, service: str) -> str:
        """Stop and start one local container, under the lock `devenv up` takes."""
        from devenv.state import project_lock

        if service not in SERVICES:
            raise ConfigError(
                f"unknown service {service!r}", hint=f"use one of: {', '.join(SERVICES)}"
            )
        observation = self.observe()
        if not observation.stack.local(service):
            raise RefusedError(
                f"{service} is an external provider; devenv restarts only its own containers"
            )
        rt = observation.runtime
        with project_lock(self.options.root, self.project):
            container = rt.observe(self.project).container(service)
            if container is None:
                raise RefusedError(f"no container for {service}", hint="press Up to create it")
            if container.state == "running":
                rt.stop(container.id, timeout=10)
            rt.start(container.id, service=service)
        return f"{service} restarted"

    # --- devenv watch ------------------------------------------------------------------

    def watch_text(self) -> str | None:
        """The text of `devenv watch`'s last cycle, when the file exists."""
        from devenv.state import state_dir

        path = state_dir(self.options.root, self.project) / WATCH_FILE
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
