"""The dashboard's one door into devenv: every use case the page triggers goes through here.

The rest of devenv/ui/ knows only the view models (views.py). Everything here is a public use
case of devenv.app, given the run's one secret registry (the console's) and its adapters:
- status: app.status_scan once a pass, then app.service_status for each service in a thread
  of the hub's own, so that a slow probe (a backend waiting on a dead database) never holds
  back the row of a service that answers; `devenv status` is built from the same two;
- checks: app.report without the cargo scaffold checks (its checks and phase evaluation);
- logs: app.logs; up: app.up; restart: app.restart (both under the project's lock).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devenv import app
from devenv.model import SERVICES
from devenv.ui.views import Checked, ServiceView
from devenv.ui.watch import WATCH_FILE

if TYPE_CHECKING:
    from devenv.config.load import Options
    from devenv.config.secrets import Secrets


class Adapter:
    services: tuple[str, ...] = SERVICES

    def __init__(
        self,
        options: Options,
        secrets: Secrets,
        *,
        registry: Path | None = None,
        adapters: app.Adapters = app.REAL,
    ) -> None:
        self.options = options
        self.secrets = secrets
        self.registry = registry
        self.adapters = adapters

    @property
    def project(self) -> str:
        return self.options.project

    def validate(self) -> str:
        """Read the profile and compose file once (a typo fails here); the profile's name."""
        from devenv.config.load import load_config

        config = load_config(self.options)
        self.secrets.add(*config.profile.secrets())
        return config.profile.name

    def redact(self, text: str) -> str:
        return self.secrets.redact(text)

    # --- status ------------------------------------------------------------------------

    def observe(self) -> app.StatusScan:
        return app.status_scan(self.options, adapters=self.adapters, secrets=self.secrets)

    def probe(self, scan: app.StatusScan, service: str) -> ServiceView:
        """One service as `devenv status` shows it, with its probe's latency."""
        s = app.service_status(scan, service)
        return ServiceView(
            name=s.name,
            provider=s.provider,
            state=s.state,
            healthy=s.healthy,
            detail=s.detail,
            latency_ms=s.latency_ms,
            image=s.image,
            url=s.url,
        )

    # --- checks and report -------------------------------------------------------------

    def run_checks(self) -> Checked:
        """Every check `devenv report` runs (no cargo scaffold checks), and its evaluation."""
        result = app.report(
            self.options,
            registry=self.registry,
            scaffold=False,
            adapters=self.adapters,
            secrets=self.secrets,
        )
        return Checked(result.checks, result.evaluation, result.profile)

    # --- logs and actions --------------------------------------------------------------

    def logs(self, service: str, *, tail: int = 200) -> list[str]:
        prefix = f"{service} | "
        lines = app.logs(
            self.options,
            service,
            follow=False,
            tail=tail,
            adapters=self.adapters,
            secrets=self.secrets,
        )
        return [line.removeprefix(prefix).rstrip("\n") for line in lines]

    def up(self, progress: Callable[[str], None]) -> str:
        result = app.up(
            self.options, progress=progress, adapters=self.adapters, secrets=self.secrets
        )
        if result.noop:
            return f"nothing to do: {result.project} is up to date and healthy"
        return f"stack {result.project} is up (profile {result.profile}) in {result.seconds:.1f} s"

    def restart(self, service: str, progress: Callable[[str], None]) -> str:
        result = app.restart(
            self.options, service, progress=progress, adapters=self.adapters, secrets=self.secrets
        )
        return f"{service} restarted and answering again in {result.seconds:.1f} s"

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
