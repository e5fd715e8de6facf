"""The resolved stack of one run: root, project, profile, state, ports and endpoints."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.errors import ConfigError, PortConflictError
from devenv.model import Profile, Project, ServiceSpec
from devenv.runtime.base import Observed
from devenv.state import State, load_state, port_claims

if TYPE_CHECKING:
    from devenv.probes.base import S3Target


_NAME_OK = re.compile(r"[^a-z0-9_-]+")


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


@dataclass
class Config:
    """What the files say before any engine is asked: profile, state, credentials, and the
    compose file read once with those (its preferred ports)."""

    profile: Profile
    state: State
    creds: dict[str, str]
    draft: Project


def load_config(options: Options) -> Config:
    """Read and validate the profile and compose file; raises ConfigError on bad input."""
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
    return Config(profile, state, creds, _load_project(options, creds))


def resolve_stack(
    options: Options,
    *,
    config: Config | None = None,
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
    config = config or load_config(options)
    profile, state, creds, first = config.profile, config.state, config.creds, config.draft
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
