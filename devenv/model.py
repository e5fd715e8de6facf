"""Frozen value types shared by the pure layers: project, services, profiles, check results."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SERVICES: tuple[str, ...] = ("postgres", "objectstore", "backend")
LOOPBACK = "127.0.0.1"  # every published port and every local endpoint, nothing else
# The user the dev auth bypass logs in as: seeded by `up`, used by the route checks.
DEV_USER_ID = "00000000-0000-0000-0000-000000000001"
Provider = Literal["local", "external"]
# required: a failure blocks phases and fails `check`; advisory: reported, blocks nothing
Level = Literal["required", "advisory"]


@dataclass(frozen=True)
class S3Target:
    """A bucket and how to reach it: endpoint, region and the access key pair."""

    endpoint: str
    bucket: str
    region: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)


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


ProbeKind = Literal["postgres", "s3", "http"]
# compose's pull_policy: when to pull the service's image (missing: when the engine lacks it,
# always: on every `up`, never: not at all), or build the stand-in instead of pulling (build).
PullPolicy = Literal["missing", "always", "never", "build"]
PULL_POLICIES: tuple[PullPolicy, ...] = ("missing", "always", "never", "build")
# compose's depends_on conditions devenv honours: start the dependent once the dependency has
# started (service_started), or once its probe passed (service_healthy).
Condition = Literal["started", "healthy"]


@dataclass(frozen=True)
class ProbeSpec:
    """`x-devenv.probe`: how devenv tells the service is ready, from the host."""

    kind: ProbeKind
    path: str = "/"  # http only


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: Condition = "started"


@dataclass(frozen=True)
class ServiceSpec:
    """One service of compose/compose.yaml, before provider bindings apply.

    Every field is interpolated when the file is read, except `environment`: its values stay
    templates (None: passed through from the caller's environment) until the stack's own
    variables (credentials, chosen ports, endpoints) are known (`resolve_environment`).
    """

    name: str
    image: str
    standin: StandIn | None
    build_context: Path | None
    environment: Mapping[str, str | None]
    command: tuple[str, ...] | None
    ports: tuple[PortSpec, ...]
    volumes: tuple[VolumeMount, ...]
    depends_on: tuple[Dependency, ...]
    probe: ProbeSpec
    network_mode: str | None = None
    user: str | None = None
    # `x-devenv.port_env`: the variable that carries the host port devenv chose for this
    # service into the environment templates (the compose file's `${POSTGRES_PORT:-5432}`)
    port_env: str = ""
    preferred_port: int | None = None  # for host-network services, which have no `ports:`
    pull_policy: PullPolicy | None = None  # compose's `pull_policy`; None: not set (missing)

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(d.service for d in self.depends_on)

    @property
    def host_port(self) -> int | None:
        """The host port this service prefers: its first published port, or `x-devenv.port`."""
        return self.ports[0].preferred_host_port if self.ports else self.preferred_port


@dataclass(frozen=True)
class BackendBuild:
    """How one backend source checkout becomes an image: where, which package and binary
    (the contract's by default; inside the image the binary is always /app/ignition-api),
    and whether cargo must keep to the lock file (None: when there is one)."""

    context: Path
    package: str = "ignition-api"
    binary: str = "ignition-api"
    locked: bool | None = None

    @property
    def source(self) -> Path:
        return self.context.resolve()

    @property
    def source_id(self) -> str:
        return hashlib.sha256(str(self.source).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ImageChoice:
    """The image a service will run, and how to get it when it is missing: pulled (`pull`),
    else built from `recipe` on `base`. `why` says which path and why, in one phrase."""

    ref: str
    identity: str  # what the config hash sees: digest or image id, recipe hash or source
    present: bool
    recipe: str | None = None  # build this stand-in recipe when not present
    pg_major: str | None = None
    pull: bool = False  # pull `ref` from its registry
    why: str = ""
    base: str | None = None  # the image a recipe build starts FROM


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
