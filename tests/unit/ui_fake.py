"""A fake of the engine the dashboard hub drives: the adapter's shape, no Docker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from devenv.checks import ids
from devenv.config.secrets import redact
from devenv.model import CheckResult, Profile
from devenv.phases.evaluate import evaluate
from devenv.phases.registry import load_registry
from devenv.ui.views import Checked, ServiceView

SECRET = "pw-Zq8Lr2Vt9Xn4"


class FakeEngine:
    services: tuple[str, ...] = ("postgres", "objectstore", "backend")

    def __init__(self) -> None:
        self.observations = 0
        self.probes: dict[str, int] = dict.fromkeys(self.services, 0)
        self.healthy = dict.fromkeys(self.services, True)
        self.slow: dict[str, threading.Event] = {}  # probes that wait for their event
        self.lock = threading.Lock()
        self.fail_restart: Exception | None = None
        self.check_runs = 0

    def observe(self) -> int:
        with self.lock:
            self.observations += 1
            return self.observations

    def probe(self, observation: Any, service: str) -> ServiceView:
        with self.lock:
            self.probes[service] += 1
        gate = self.slow.get(service)
        if gate is not None:
            gate.wait(5)
        ok = self.healthy[service]
        return ServiceView(
            name=service,
            provider="local",
            state="running" if ok else "exited",
            healthy=ok,
            detail=f"answered with password {SECRET}" if ok else "exited with code 137",
            latency_ms=1.5,
            image=f"devenv-standin/{service}:1",
            url=f"postgres://ignition:{SECRET}@127.0.0.1:5432/ignition",
        )

    def run_checks(self) -> Checked:
        self.check_runs += 1
        checks = tuple(
            CheckResult(c, ids.check_name(c), True, f"ok {SECRET}") for c in ids.ALL_CHECK_IDS
        )
        profile = Profile(name="local", path=None, bindings={}, dev_bypass=True)
        return Checked(checks, evaluate(load_registry(), profile, checks), "local")

    def logs(self, service: str, *, tail: int = 200) -> list[str]:
        return [f"{service} started with {SECRET}"]

    def up(self, progress: Callable[[str], None]) -> str:
        progress(f"creating postgres with {SECRET}")
        return "stack is up"

    def restart(self, service: str, progress: Callable[[str], None]) -> str:
        progress(f"restarting {service}")
        if self.fail_restart is not None:
            raise self.fail_restart
        self.healthy[service] = True
        return f"{service} restarted"

    def redact(self, text: str) -> str:
        return redact(text, [SECRET])

    def watch_text(self) -> str | None:
        return None
