"""Frozen value types shared by the pure layers: project, services, profiles, check results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SERVICES: tuple[str, ...] = ("postgres", "objectstore", "backend")
Provider = Literal["local", "external"]
# required: a failure blocks phases and fails `check`; advisory: reported, blocks nothing
Level = Literal["required", "advisory"]


@dataclass(frozen=True)
class PortSpec:
    """A container port published on loopback; the host port is a preference, not a promise."""

    container_port: int
    preferred_host_port: int


@dataclass(frozen=True)
class VolumeMount:
    volume: str  # the logical name in compose.yaml; the engine name is "<project>_<volume>"
    target: str


@dataclass(frozen=True)
class StandIn:
    """How to build a local image when the compose image cannot be pulled."""

    image: str  # tag devenv builds, e.g. "devenv-standin/postgres:15"
    recipe: str  # "postgres" | "objectstore" | "backend"


@dataclass(frozen=True)
class ProbeSpec:
    kind: Literal["postgres", "s3", "http"]
    path: str = "/"  # http only


@dataclass(frozen=True)
class ServiceSpec:
    """One service of compose/compose.yaml, interpolated, before provider bindings apply."""

    name: str
    image: str
    standin: StandIn | None
    build_context: Path | None
    environment: Mapping[str, str]
    command: tuple[str, ...] | None
    ports: tuple[PortSpec, ...]
    volumes: tuple[VolumeMount, ...]
    depends_on: tuple[str, ...]
    probe: ProbeSpec
    network_mode: str | None = None
    user: str | None = None
    # devenv-only: the port variable the service's own config reads (backend: SERVER_PORT)
    port_env: str | None = None
    preferred_port: int | None = None  # for host-network services, which have no `ports:`


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    compose_file: Path
    services: tuple[ServiceSpec, ...]
    volumes: tuple[str, ...]

    def service(self, name: str) -> ServiceSpec:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)


@dataclass(frozen=True)
class ProviderBinding:
    """Which provider a profile binds one service to, with its settings (secrets resolved)."""

    service: str
    provider: Provider
    protected: bool
    settings: Mapping[str, str] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()  # settings that must never be printed


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path | None
    bindings: Mapping[str, ProviderBinding]
    dev_bypass: bool  # what the profile asked for (already refused when unsafe)
    seed: bool = True  # seed the dev user / create the bucket
    # key path ("services.postgres.url") -> layer that set it ("defaults", "profile:hybrid", ...)
    sources: Mapping[str, str] = field(default_factory=dict)

    def binding(self, service: str) -> ProviderBinding:
        found = self.bindings.get(service)
        if found is None:
            return ProviderBinding(service=service, provider="local", protected=False)
        return found

    @property
    def protected_in_play(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, b in sorted(self.bindings.items())
            if b.provider == "external" and b.protected
        )

    def secrets(self) -> tuple[str, ...]:
        return tuple(
            value
            for b in self.bindings.values()
            for key, value in b.settings.items()
            if key in b.secret_keys and value
        )


@dataclass(frozen=True)
class CheckResult:
    """One verified fact: ok or not, with a one-line "expected vs got" detail.

    A check skipped because a service it needs is not running names that root cause's check
    id in ``cause`` (e.g. ``backend.running``) and repeats its detail.
    """

    id: str
    name: str
    ok: bool
    detail: str
    skipped: bool = False
    level: Level = "required"
    cause: str | None = None

    @property
    def failed(self) -> bool:
        return not self.ok and not self.skipped

    @property
    def blocking(self) -> bool:
        """A failure that blocks: required and failed."""
        return self.failed and self.level == "required"
