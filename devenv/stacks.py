"""Every devenv stack on the engine (`devenv ls`), and where a project lives (`down --project`).

A stack is found by its containers' and volumes' labels alone: the project, the checkout it
lives in (the root holding `.devenv/<project>`) and the profile it was brought up with. From
the checkout, its state file and profile give the ports and credentials, and each running
local service is probed once, as `devenv status` does. External providers are named, never
asked: listing stacks touches nothing outside this machine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devenv.errors import DevenvError
from devenv.model import SERVICES
from devenv.runtime.base import (
    LABEL_CHECKOUT,
    LABEL_PROFILE,
    LABEL_PROJECT,
    Observed,
    ObservedContainer,
    ObservedVolume,
)

if TYPE_CHECKING:
    from devenv.app import Adapters
    from devenv.config.secrets import Secrets
    from devenv.runtime.base import Runtime
    from devenv.stack import Stack

LS_SCHEMA = 1  # bump when a field of `ls --json` changes meaning


@dataclass(frozen=True)
class ServiceRow:
    name: str
    state: str  # the container's state, or "external"
    healthy: bool | None  # None: not probed (external, or the stack's configuration is unknown)
    detail: str
    port: int | None
    container: str = ""


@dataclass(frozen=True)
class StackRow:
    project: str
    profile: str | None
    checkout: str | None
    services: tuple[ServiceRow, ...]
    volumes: tuple[str, ...]
    created: float | None  # the oldest container's creation, seconds since the epoch
    note: str = ""  # why health or ports are unknown

    @property
    def state(self) -> str:
        states = [s.state for s in self.services if s.state != "external"]
        if not states:
            return "down (data kept)" if self.volumes else "down"
        if all(s == "running" for s in states):
            return "running"
        return "partly running" if "running" in states else "stopped"

    @property
    def healthy(self) -> bool | None:
        known = [s.healthy for s in self.services if s.healthy is not None]
        if not known:
            return None
        return all(known)

    @property
    def ports(self) -> dict[str, int]:
        return {s.name: s.port for s in self.services if s.port is not None}

    def age(self, now: float) -> float | None:
        return None if self.created is None else max(0.0, now - self.created)

    def to_json(self, now: float) -> dict[str, Any]:
        age = self.age(now)
        return {
            "project": self.project,
            "profile": self.profile,
            "checkout": self.checkout,
            "state": self.state,
            "healthy": self.healthy,
            "ports": self.ports,
            "age_seconds": None if age is None else round(age, 1),
            "created": self.created,
            "services": [s.__dict__ for s in self.services],
            "volumes": list(self.volumes),
            "note": self.note,
        }


def ls_data(rows: Sequence[StackRow], now: float) -> dict[str, Any]:
    return {"schema_version": LS_SCHEMA, "stacks": [r.to_json(now) for r in rows]}


def _label(
    containers: Sequence[ObservedContainer], volumes: Sequence[ObservedVolume], key: str
) -> str | None:
    """The newest container's label, else a volume's (a stack that is down keeps its data)."""
    for c in sorted(containers, key=lambda c: c.created, reverse=True):
        if c.label(key):
            return c.label(key)
    for v in volumes:
        if v.labels.get(key):
            return str(v.labels[key])
    return None


def checkout_of(observed: Observed) -> Path | None:
    """Where the project these containers and volumes belong to lives, when it still exists."""
    found = _label(observed.containers, observed.volumes, LABEL_CHECKOUT)
    return Path(found) if found and Path(found).is_dir() else None


def _stack(project: str, checkout: str | None, profile: str | None) -> tuple[Stack | None, str]:
    """The stack as its own checkout describes it (ports, credentials), or why it cannot be."""
    from devenv.config.load import Options, load_config
    from devenv.observe import current

    if checkout is None:
        return None, "no checkout label (an older devenv made it; the next `up` adds it)"
    if not Path(checkout).is_dir():
        return None, f"its checkout {checkout} is gone"
    try:
        options = Options(root=Path(checkout), project=project, profile=profile)
        return current(load_config(options), None)[1], ""
    except DevenvError as exc:
        return None, f"not probed: {exc.one_line()}"


def _row(
    project: str,
    containers: Sequence[ObservedContainer],
    volumes: Sequence[ObservedVolume],
    adapters: Adapters,
    secrets: Secrets | None,
) -> StackRow:
    from devenv.observe import attempt

    checkout = _label(containers, volumes, LABEL_CHECKOUT)
    profile = _label(containers, volumes, LABEL_PROFILE)
    stack, note = _stack(project, checkout, profile) if containers else (None, "")
    if stack is not None and secrets is not None:
        secrets.add(*stack.secrets())
    clients = adapters.clients(stack) if stack is not None else None
    by_service = {c.service: c for c in containers}
    rows: list[ServiceRow] = []
    for service in SERVICES:
        c = by_service.get(service)
        if c is None:
            if stack is not None and not stack.local(service):
                rows.append(ServiceRow(service, "external", None, "external (not asked)", None))
            continue
        port = stack.ports.get(service) if stack is not None else None
        if port is None and c.host_ports:
            port = c.host_ports[0]
        if c.state != "running":
            how = f"exited with code {c.exit_code}" if c.state == "exited" else c.state
            rows.append(ServiceRow(service, c.state, False, how, port, c.name))
        elif clients is None:
            rows.append(ServiceRow(service, c.state, None, note or "not probed", port, c.name))
        else:
            healthy, detail = attempt(clients.probe(service))
            rows.append(ServiceRow(service, c.state, healthy, detail, port, c.name))
    created = min((c.created for c in containers if c.created), default=None)
    return StackRow(
        project,
        profile,
        checkout,
        tuple(rows),
        tuple(sorted(v.name for v in volumes)),
        created,
        note,
    )


def _by_project(items: Iterable[Any], labels: Any) -> Mapping[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        project = labels(item).get(LABEL_PROJECT)
        if project:
            found[str(project)].append(item)
    return found


def list_stacks(
    *,
    project: str | None = None,
    adapters: Adapters | None = None,
    secrets: Secrets | None = None,
) -> list[StackRow]:
    """Every devenv project on the engine (or only `project`), sorted by name."""
    from devenv.app import REAL

    adapters = adapters or REAL
    runtime: Runtime = adapters.runtime()
    seen = runtime.observe_all()
    containers = _by_project(seen.containers, lambda c: dict(c.labels))
    volumes = _by_project(seen.volumes, lambda v: v.labels)
    names = sorted(set(containers) | set(volumes))
    if project is not None:
        names = [n for n in names if n == project]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(
            pool.map(
                lambda n: _row(n, containers.get(n, []), volumes.get(n, []), adapters, secrets),
                names,
            )
        )


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
