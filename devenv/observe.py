"""Observe once: every fact the plan needs, gathered before any decision and changing nothing.

The engine (containers and volumes by label, who publishes which host port), images by
reference with the identity each should have (recipe hashes, backend source fingerprints),
what the registry says of the images the plan may pull (asked only when one is missing, once
per registry when it is unreachable), the tools this host has for building the offline base,
which host ports a listener could bind now and which other projects claim (read only), the
state file as read, the backend source's migrations and, when Postgres answers, the rows it
applied, whether the bucket exists, the golden snapshot (stored? its database intact?)
and which source `devenv watch` put into the backend container. Nothing is decided here
and nothing is written.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devenv.config.load import Config
from devenv.images.choice import HostFacts
from devenv.model import LOOPBACK, ServiceSpec
from devenv.probes.base import ProbeFailure
from devenv.runtime.base import ImageInfo, Observed, ObservedContainer, RegistryAnswer, Runtime
from devenv.snapshot.model import GoldenFacts
from devenv.state import (
    CREDENTIALS,
    Serving,
    StateFile,
    claimed_image,
    load_state,
    new_secret,
    read_port_claims,
    read_serving,
)

if TYPE_CHECKING:
    from pathlib import Path

    from devenv.checks.services import ServiceState
    from devenv.migrations import AppliedMigration, MigrationSet
    from devenv.probes.base import Probe
    from devenv.probes.clients import ClientsFor
    from devenv.stack import Stack


@dataclass(frozen=True)
class PortFacts:
    """Host ports as they are now: which candidates a listener could bind, spare free ports
    for fallbacks, and other devenv projects' claims."""

    free: Mapping[int, bool] = field(default_factory=dict)
    spare: tuple[int, ...] = ()
    claimed: frozenset[int] = frozenset()  # by other projects on this machine
    mine: tuple[int, ...] = ()  # this project's own claim
    claimed_at: float | None = None


@dataclass(frozen=True)
class MigrationFacts:
    known: MigrationSet | None = None  # what the backend source accepts
    why: str = ""  # why `known` is None
    applied: tuple[AppliedMigration, ...] | None = None  # None: Postgres did not answer now
    unread: str = ""  # why `applied` is None


@dataclass(frozen=True)
class Observation:
    engine: Observed = field(default_factory=Observed)
    state: StateFile | None = None
    fresh: Mapping[str, str] = field(default_factory=dict)  # credentials drawn for any missing
    images: Mapping[str, ImageInfo | None] = field(default_factory=dict)  # by reference
    identities: Mapping[str, str] = field(default_factory=dict)  # service -> image identity
    registry: Mapping[str, RegistryAnswer] = field(default_factory=dict)  # by reference
    host: HostFacts = field(default_factory=HostFacts)
    ports: PortFacts = field(default_factory=PortFacts)
    image_claim: str | None = None  # the backend image this project claims machine-wide
    migrations: MigrationFacts = field(default_factory=MigrationFacts)
    bucket: bool | None = None  # None: the object store did not answer now
    golden: GoldenFacts = field(default_factory=GoldenFacts)
    serving: Serving | None = None  # what `devenv watch` put into the backend container
    now: float = 0.0


def observe(config: Config, runtime: Runtime, clients: ClientsFor) -> Observation:
    """All the I/O `up` needs before it decides: engine, images, ports, files, providers."""
    state = load_state(config.options.root, config.name)
    with ThreadPoolExecutor(max_workers=4) as pool:
        engine = pool.submit(runtime.observe, config.name)
        images = pool.submit(lambda: observe_images(config, runtime, engine.result()))
        ports = pool.submit(_ports, config, state)
        known = pool.submit(_migration_set, config)
        observed = engine.result()
        current = _current_stack(config, state)
        applied = pool.submit(_applied, config, observed, current, clients, known.result()[0])
        bucket = pool.submit(_bucket, config, observed, current, clients)
        golden = pool.submit(_golden, config, observed, current, clients)
        facts = images.result()
        migration_set, why = known.result()
        rows, unread = applied.result()
        return Observation(
            engine=observed,
            state=state,
            fresh={
                name: new_secret(length)
                for name, length in CREDENTIALS.items()
                if not state.credentials.get(name)
            },
            images=facts.images,
            identities=facts.identities,
            registry=facts.registry,
            host=facts.host,
            ports=ports.result(),
            image_claim=claimed_image(config.name),
            migrations=MigrationFacts(migration_set, why, rows, unread),
            bucket=bucket.result(),
            golden=golden.result(),
            serving=read_serving(config.options.root, config.name),
            now=time.time(),
        )


def _current_stack(config: Config, state: StateFile) -> Stack:
    """The stack as it runs now (the state's credentials and ports): where to read from."""
    from devenv.stack import resolve

    return resolve(config, state.credentials, state.ports)


@dataclass(frozen=True)
class ImageFacts:
    """The images each local service could run: by reference as the engine has them, what
    their registries answered, the identity each should have, and this host's build tools."""

    identities: Mapping[str, str] = field(default_factory=dict)  # under the base the plan picks
    images: Mapping[str, ImageInfo | None] = field(default_factory=dict)
    registry: Mapping[str, RegistryAnswer] = field(default_factory=dict)
    host: HostFacts = field(default_factory=HostFacts)


LOOKUP_TIMEOUT = 15.0  # seconds for one registry answer; the engine's own dial gives up sooner


def observe_images(
    config: Config, runtime: Runtime, engine: Observed | None = None, *, want_base: bool = False
) -> ImageFacts:
    """Two rounds: the engine's images (every candidate, under either base), then, only for
    what is missing, the registries (`lookup_wanted`, `build_wanted`: the same pure rules the
    plan applies). `want_base`: the base is wanted whatever else is (`devenv images build base`)."""
    from devenv.images import choice, identity
    from devenv.images.identity import BASE_TAG, SLIM

    root = config.options.root
    bases = (BASE_TAG, SLIM)
    by_base: dict[str, dict[str, str]] = {base: {} for base in bases}
    refs: list[str] = [SLIM, BASE_TAG]
    local = [svc for svc in config.project.services if config.local(svc.name)]
    given: dict[str, str] = {}  # the profile's own backend image
    for svc in local:
        image = config.profile.binding(svc.name).settings.get("image")
        if svc.name == "backend" and image:
            given[svc.name] = image
            refs.append(image)
            continue
        recipe = svc.standin.recipe if svc.standin else None
        made = config.backend_build() if recipe == "backend" else None
        for base in bases:
            if made is not None:
                by_base[base][svc.name] = identity.backend_identity(root, made, base)
            elif recipe is not None and recipe != "backend":
                by_base[base][svc.name] = identity.recipe_hash(root, recipe, base)
            refs += choice.candidate_refs(
                ref=svc.image,
                standin=svc.standin.image if svc.standin else None,
                recipe=recipe,
                identity=by_base[base].get(svc.name),
            )
    images = {ref: runtime.image(ref) for ref in dict.fromkeys(refs)}

    own = _current_standins(config, local, images, by_base)

    def identities(base: str) -> dict[str, str]:
        return {name: own.get(name, value) for name, value in by_base[base].items()}

    provisional = identities(choice.provisional_base(images))
    wanted: list[str] = []
    build = want_base
    for svc in local:
        standin = None if svc.name in given else svc.standin
        current = engine.container(svc.name) if engine is not None else None
        ref = given.get(svc.name, svc.image)
        standin_image, recipe = (standin.image, standin.recipe) if standin else (None, None)
        policy = config.pull_policy(svc)
        ident = provisional.get(svc.name)
        if choice.lookup_wanted(
            images, ref=ref, standin=standin_image, recipe=recipe, identity=ident,
            policy=policy, current_image=current.image if current else None,
        ):  # fmt: skip
            wanted.append(ref)
        build = build or choice.build_wanted(
            images, ref=ref, standin=standin_image, recipe=recipe, identity=ident, policy=policy
        )
    base_policy = config.options.pull or "missing"
    if build and base_policy != "never" and (images.get(SLIM) is None or base_policy == "always"):
        wanted.append(SLIM)
    host = host_facts(root)
    answers = lookup(runtime, wanted) if wanted else {}
    chosen = choice.choose_base(images, answers, policy=base_policy, host=host)
    return ImageFacts(identities(chosen.ref), images, answers, host)


def _current_standins(
    config: Config,
    local: list[ServiceSpec],
    images: Mapping[str, ImageInfo | None],
    by_base: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The stand-ins present and current: their recipe hash matches the recipe on the base
    they record they were built on (service -> that hash)."""
    from devenv.images import identity
    from devenv.images.identity import BASE_TAG
    from devenv.runtime.base import LABEL_BASE, LABEL_RECIPE_HASH

    own: dict[str, str] = {}
    for svc in local:
        if svc.standin is None or svc.standin.recipe == "backend":
            continue
        found = images.get(svc.standin.image)
        if found is None:
            continue
        base = found.labels.get(LABEL_BASE, BASE_TAG)
        expected = by_base.get(base, {}).get(svc.name) or identity.recipe_hash(
            config.options.root, svc.standin.recipe, base
        )
        if found.labels.get(LABEL_RECIPE_HASH) == expected:
            own[svc.name] = expected
    return own


def lookup(runtime: Runtime, refs: Iterable[str]) -> dict[str, RegistryAnswer]:
    """Ask each reference's registry, all registries at once; an unreachable registry is
    asked once, and that answer stands for its other references."""
    from devenv.images.registry import registry_of, verdict

    groups: dict[str, list[str]] = {}
    for ref in dict.fromkeys(refs):
        groups.setdefault(registry_of(ref), []).append(ref)

    def ask(group: list[str]) -> list[RegistryAnswer]:
        first = runtime.lookup(group[0], timeout=LOOKUP_TIMEOUT)
        if verdict(first) == "unreachable":
            return [
                first,
                *(RegistryAnswer(ref, None, first.error, first.status) for ref in group[1:]),
            ]
        if len(group) == 1:
            return [first]
        with ThreadPoolExecutor(max_workers=4) as pool:
            rest = list(
                pool.map(lambda ref: runtime.lookup(ref, timeout=LOOKUP_TIMEOUT), group[1:])
            )
        return [first, *rest]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answered = [a for found in pool.map(ask, groups.values()) for a in found]
    return {a.ref: a for a in answered}


def host_facts(project_root: Path) -> HostFacts:
    """Root or not, the base-building tools on PATH, and (for mmdebstrap's unshare mode)
    whether this user has subordinate uid and gid ranges."""
    from devenv.images.choice import BASE_TOOLS

    root = os.geteuid() == 0
    tools = frozenset(tool for tool in BASE_TOOLS if shutil.which(tool))
    subids = False
    if not root and "mmdebstrap" in tools:
        import pwd

        names = {str(os.getuid()), pwd.getpwuid(os.getuid()).pw_name}
        subids = all(_has_range(f"/etc/sub{kind}", names) for kind in ("uid", "gid"))
    from devenv.images.identity import objectstore_binary

    built = objectstore_binary(project_root).is_file()
    return HostFacts(root=root, tools=tools, subids=subids, s3s_built=built)


def _has_range(path: str, names: set[str]) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return any(line.split(":", 1)[0] in names for line in fh if ":" in line)
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    """Whether a listener could bind loopback:port (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _ports(config: Config, state: StateFile) -> PortFacts:
    claims = read_port_claims(config.name)
    claimed = frozenset(claims.others())
    mine, at = claims.mine()
    candidates: list[int] = []
    for svc in config.project.services:
        if config.local(svc.name) and svc.host_port is not None:
            remembered = state.ports.get(svc.name)
            candidates += [p for p in (remembered, svc.host_port) if p]
    free = {port: port_is_free(port) for port in dict.fromkeys(candidates)}
    spare: list[int] = []
    with ExitStack() as held:  # held open together, so that the spares are distinct
        while len(spare) < len(free):
            s = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
            if port not in claimed and port not in free:
                spare.append(port)
    return PortFacts(free, tuple(spare), claimed, mine, at)


def _migration_set(config: Config) -> tuple[MigrationSet | None, str]:
    if not config.local("backend"):
        return None, "the backend is external"
    source = config.migration_source()
    if source.directory is None or source.source is None:
        return None, source.why
    from devenv.migrations import read_migration_set

    known = read_migration_set(source.directory, source=source.source, display=source.display)
    return known, ""


def _applied(
    config: Config,
    engine: Observed,
    current: Stack,
    clients: ClientsFor,
    known: MigrationSet | None,
) -> tuple[tuple[AppliedMigration, ...] | None, str]:
    """The database's migration rows when they can be read right now (read-only)."""
    if known is None:
        return None, "no migrations to compare"
    if config.local("postgres"):
        pg = engine.container("postgres")
        if pg is None or pg.state != "running":
            return None, "Postgres is not running yet"
    try:
        return clients(current).applied_migrations(), ""
    except ProbeFailure as exc:
        return None, exc.message


def _bucket(config: Config, engine: Observed, current: Stack, clients: ClientsFor) -> bool | None:
    if config.local("objectstore"):
        store = engine.container("objectstore")
        if store is None or store.state != "running":
            return None
    try:
        return clients(current).bucket_exists()
    except ProbeFailure:
        return None


def _golden(config: Config, engine: Observed, current: Stack, clients: ClientsFor) -> GoldenFacts:
    """The golden snapshot as the store has it; its database is asked only of our own
    running Postgres (a port we no longer hold may be anyone's)."""
    if not (config.local("postgres") and config.local("objectstore")):
        return GoldenFacts()
    pg = engine.container("postgres")
    return clients(current).golden(ask_database=pg is not None and pg.state == "running")


# --- what runs now: status, checks, logs ---------------------------------------------------


def current(config: Config, runtime: Runtime | None) -> tuple[Observed, Stack]:
    """The engine's containers of this project (none without a runtime) and the stack as
    the state file says it runs (credentials, ports)."""
    state = load_state(config.options.root, config.name)
    engine = runtime.observe(config.name) if runtime is not None else Observed()
    return engine, _current_stack(config, state)


def attempt(probe: Probe) -> tuple[bool, str]:
    """One probe attempt: (passed, its fact or the first line of its error)."""
    try:
        return True, probe.attempt()
    except ProbeFailure as exc:
        return False, (exc.message.splitlines() or [""])[0]


def service_state(
    service: str, container: ObservedContainer | None, runtime: Runtime | None
) -> ServiceState:
    """What the engine says about a local service; its last log lines when it is not running."""
    from devenv.checks.services import ServiceState

    if container is None:
        return ServiceState(service)
    logs = ""
    if container.state != "running" and runtime is not None:
        logs = runtime.logs(container.id, tail=40)
    return ServiceState(
        service,
        state=container.state,
        exit_code=container.exit_code,
        restart_count=container.restart_count,
        logs=logs,
    )


def external_state(stack: Stack, service: str) -> ServiceState:
    """Whether an external provider accepts a TCP connection (credentials are not involved)."""
    from urllib.parse import urlsplit

    from devenv.checks.services import ServiceState

    url = stack.endpoints.storage.endpoint if service == "objectstore" else stack.url(service)
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
