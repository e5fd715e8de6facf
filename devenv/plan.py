"""Plan, pure: configuration + one observation -> every step of an `up`, each with a cause.

No engine, no sockets, no files: `reconcile` decides from the facts `observe` gathered. A step
has a typed kind, a target, a cause a human can read, and the steps it waits for (`after`);
the executor only runs them. What would make the run unsafe (a Postgres data directory of
another major version, a database migrated by another backend source, the dev bypass beside a
protected provider, a taken port under --strict-ports) is the plan's `error`, with the steps it
would have taken still listed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from devenv.config.load import Config
from devenv.errors import DevenvError, ImageError, PortConflictError, RefusedError
from devenv.images.choice import BaseChoice, choose_base
from devenv.model import SERVICES, ImageChoice, ServiceSpec
from devenv.observe import Observation, PortFacts
from devenv.runtime.base import (
    LABEL_CHECKOUT,
    LABEL_DIGEST,
    LABEL_HASH,
    LABEL_PG_MAJOR,
    LABEL_PROFILE,
    LABEL_PROJECT,
    LABEL_SERVICE,
    LABEL_VOLUME,
    ContainerSpec,
    Observed,
)
from devenv.snapshot.model import GOLDEN
from devenv.stack import Stack, resolve
from devenv.state import Serving

StepKind = Literal[
    "save-state",  # write generated credentials and chosen ports to the state file
    "claim-ports",  # record this project's host ports machine-wide
    "claim-image",  # record the backend image this project runs machine-wide
    "verify-external",  # probe an external provider (read-only when protected)
    "remove",  # remove a container the stack no longer has
    "create-volume",
    "pull-image",  # pull a service's image (or the slim base) from its registry
    "build-image",  # build a stand-in, the backend, or the offline base
    "create",  # create a container (started by its own `start` step)
    "recreate",  # replace a container whose configuration changed
    "start",
    "restart",  # stop and start a container that is asked to restart
    "keep",  # an up-to-date, running container
    "create-bucket",
    "wait-ready",  # probe a local service until it answers or the deadline passes
    "verify-migrations",  # compare the database's sqlx migrations with the backend source's
    "seed-user",  # upsert the dev-bypass user
    "snapshot-golden",  # copy the healthy stack's database and bucket for `devenv reset`
]
# Kinds that change something; a plan with none of them is a no-op.
CHANGES: frozenset[StepKind] = frozenset(
    ("save-state", "claim-ports", "claim-image", "remove", "create-volume", "pull-image",
     "build-image", "create", "recreate", "start", "restart", "create-bucket", "seed-user",
     "snapshot-golden")
)  # fmt: skip
CONTAINER_KINDS: frozenset[StepKind] = frozenset(("create", "recreate", "start", "keep"))
CLAIM_REFRESH = 24 * 3600.0  # a claim older than this is renewed (others ignore it after a week)


@dataclass(frozen=True)
class Step:
    kind: StepKind
    target: str
    cause: str
    after: tuple[str, ...] = ()  # ids of the steps this one waits for

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class Desired:
    """The container a local service should have, and what it needs around it."""

    service: str
    spec: ContainerSpec
    image: ImageChoice
    volumes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (engine name, labels)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    stack: Stack | None = None  # the credentials, ports and endpoints the steps use
    desired: Mapping[str, Desired] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    error: DevenvError | None = None  # why this plan must not run

    @property
    def noop(self) -> bool:
        return not any(step.kind in CHANGES for step in self.steps)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def for_target(self, target: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.target == target)

    def text(self) -> str:
        return "\n".join(f"{s.kind:<17} {s.target:<21} {s.cause}".rstrip() for s in self.steps)


# --- container identity --------------------------------------------------------------------


def _short(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def config_digest(spec: ContainerSpec, image_identity: str) -> dict[str, str]:
    """Short hashes of each field that matters to the running container (and nothing else)."""
    digest = {"image": _short(image_identity)}
    for key, value in spec.environment:
        digest[f"env {key}"] = _short(value)
    digest["command"] = _short(json.dumps(spec.command))
    digest["ports"] = _short(json.dumps(sorted(spec.ports)))
    digest["mounts"] = _short(json.dumps(sorted(spec.mounts)))
    digest["network"] = _short(str(spec.network_mode))
    digest["user"] = _short(str(spec.user))
    return digest


def with_labels(
    spec: ContainerSpec, image_identity: str, extra: Mapping[str, str] | None = None
) -> ContainerSpec:
    """The spec with devenv's labels: project, service, config hash and per-field digest, and
    `extra` ones that describe the container without changing it (outside the hash)."""
    digest = config_digest(spec, image_identity)
    blob = json.dumps(digest, sort_keys=True)
    labels = {
        **(extra or {}),
        LABEL_PROJECT: spec.project,
        LABEL_SERVICE: spec.service,
        LABEL_HASH: _short(blob),
        LABEL_DIGEST: blob,
    }
    return replace(spec, labels=tuple(sorted(labels.items())))


def where_labels(config: Config) -> dict[str, str]:
    """Which checkout a project lives in and the profile it runs, for `devenv ls`."""
    return {
        LABEL_CHECKOUT: str(config.options.root),
        LABEL_PROFILE: config.profile_ref,
    }


def volume_labels(
    project: str, logical: str, extra: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    labels = {LABEL_PROJECT: project, LABEL_VOLUME: logical, **extra}
    return tuple(sorted(labels.items()))


def _changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def container_step(
    d: Desired, observed: Observed, serving: Serving | None = None
) -> tuple[StepKind, str]:
    """What the service's container needs, and why.

    A backend container into which `devenv watch` copied a binary (`serving`, by container
    id) runs the source that binary was built from, not its image's: when that is the source
    the checkout has now, an image that differs only in being older is no reason to recreate
    (nor to build); when it is another source, the container is recreated even though its
    configuration matches."""
    current = observed.container(d.service)
    if current is None:
        return "create", "no container yet"
    served = serving if serving is not None and serving.container == current.id else None
    note = ""
    if served is not None and d.service == "backend":
        what = f"source {served.identity[:12]} ({served.profile} build from devenv watch)"
        if served.identity != d.image.identity:
            return "recreate", f"serves {what}; the checkout is source {d.image.identity[:12]}"
        note = f"serving {what}"
    new_hash = dict(d.spec.labels).get(LABEL_HASH, "")
    if current.config_hash != new_hash:
        new_digest = json.loads(dict(d.spec.labels).get(LABEL_DIGEST, "{}"))
        changed = _changed(dict(current.digest), new_digest) or ["labels"]
        if note:
            changed = [c for c in changed if c != "image"]
        if changed:
            shown = ", ".join(changed[:4]) + (
                f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
            )
            return "recreate", f"config changed: {shown}"
    if dict(d.spec.labels).get(LABEL_CHECKOUT) and not current.label(LABEL_CHECKOUT):
        # once: an older devenv made it without the labels `devenv ls` and `down` read
        return "recreate", "labels: no checkout and profile (made by an older devenv)"
    if current.state != "running":
        how = (
            f"exited with code {current.exit_code}" if current.state == "exited" else current.state
        )
        return "start", f"container {how}" + (f"; {note}" if note else "")
    return "keep", note or "up to date"


# --- host ports ----------------------------------------------------------------------------


def choose_ports(
    config: Config,
    remembered: Mapping[str, int],
    engine: Observed,
    facts: PortFacts,
    *,
    strict: bool,
) -> tuple[dict[str, int], list[str], PortConflictError | None]:
    """Keep last run's port when ours or free; else the preferred one; else a spare free one.

    Ports other devenv projects claim are never chosen. Under `strict`, a taken port is an
    error naming who holds it instead of a fallback.
    """
    chosen: dict[str, int] = {}
    notes: list[str] = []
    spare = list(facts.spare)
    for svc in config.project.services:
        preferred = svc.host_port
        if preferred is None or not config.local(svc.name):
            continue
        ours = engine.container(svc.name)
        kept = remembered.get(svc.name)
        held_by_us = ours is not None and ours.state == "running"
        port = None
        for candidate in [p for p in (kept, preferred) if p]:
            if candidate in chosen.values() or candidate in facts.claimed:
                continue
            if (held_by_us and candidate == kept) or facts.free.get(candidate, False):
                port = candidate
                break
        if port is None:
            taken = kept or preferred
            who = engine.published.get(taken)
            if strict or not spare:
                by = f"container {who}" if who else "another process"
                if who is None and taken in facts.claimed:
                    by = "another devenv project on this machine"
                error = PortConflictError(
                    f"service {svc.name}: host port {taken} is held by {by}",
                    hint=f"stop {who or 'that process'}, or drop --strict-ports to use a free port",
                )
                return chosen, notes, error
            port = spare.pop(0)
            notes.append(f"{svc.name}: port {taken} is taken, using {port} instead")
        chosen[svc.name] = port
    return chosen, notes, None


# --- the plan ------------------------------------------------------------------------------


def reconcile(
    config: Config,
    observation: Observation,
    *,
    strict_ports: bool = False,
) -> Plan:
    """Pure: every step that makes the engine and the providers match `config`."""
    state = observation.state
    stored = state.credentials if state is not None else {}
    credentials = {
        name: stored.get(name) or observation.fresh.get(name, "")
        for name in sorted(set(stored) | set(observation.fresh))
    }
    engine = observation.engine
    remembered = state.ports if state is not None else {}
    ports, notes, conflict = choose_ports(
        config, remembered, engine, observation.ports, strict=strict_ports
    )
    stack = resolve(config, credentials, {**remembered, **ports})
    desired = {
        svc.name: _desired(stack, svc, observation)
        for svc in config.project.services
        if config.local(svc.name)
    }
    builder = _Builder(config, observation, stack, desired)
    steps = builder.steps(ports, seed=config.profile.seed)
    error = next(
        (e for e in (_bypass_refusal(config), builder.refusal, conflict) if e is not None), None
    )
    return Plan(tuple(steps), stack, desired, (*_registry_notes(observation), *notes), error)


def _registry_notes(observation: Observation) -> list[str]:
    """An unreachable registry, said once per run (it was asked once, not retried)."""
    from devenv.images.registry import registry_of, short_error, verdict

    said: dict[str, str] = {}
    for answer in observation.registry.values():
        where = registry_of(answer.ref)
        if verdict(answer) == "unreachable" and where not in said:
            said[where] = (
                f"registry {where} unreachable ({short_error(answer)}): using what the engine "
                "has and the local stand-in recipes (`--pull never` skips asking)"
            )
    return list(said.values())


def base_choice(config: Config, observation: Observation) -> BaseChoice:
    """The image the recipes build FROM (pure: from the observation)."""
    return choose_base(
        observation.images,
        observation.registry,
        policy=config.options.pull or "missing",
        host=observation.host,
    )


def _bypass_refusal(config: Config) -> RefusedError | None:
    protected = config.profile.protected_in_play
    if not (config.profile.dev_bypass and protected):
        return None
    return RefusedError(
        f"profile {config.profile.name} turns the dev auth bypass on while {protected[0]} is a "
        "protected external provider: anyone could act as the dev user against it",
        hint=f"set auth.dev_bypass = false, or protected = false under [services.{protected[0]}]",
    )


def image_choice(config: Config, svc: ServiceSpec, observation: Observation) -> ImageChoice:
    """The image `svc` runs: the profile's own image; else the compose image when present;
    else a current stand-in; else the compose image pulled; else its stand-in built."""
    from devenv.images.choice import choose

    given = config.profile.binding(svc.name).settings.get("image")
    standin = None if svc.name == "backend" and given else svc.standin
    current = observation.engine.container(svc.name)
    return choose(
        observation.images,
        ref=given if svc.name == "backend" and given else svc.image,
        standin=standin.image if standin else None,
        recipe=standin.recipe if standin else None,
        identity=observation.identities.get(svc.name),
        policy=config.pull_policy(svc),
        registry=observation.registry,
        base=base_choice(config, observation),
        current_image=current.image if current is not None else None,
    )


def _desired(stack: Stack, svc: ServiceSpec, observation: Observation) -> Desired:
    choice = image_choice(stack.config, svc, observation)
    name = stack.name
    where = where_labels(stack.config)
    extra = where | ({LABEL_PG_MAJOR: choice.pg_major} if choice.pg_major else {})
    ports: tuple[tuple[int, int], ...] = ()
    if svc.network_mode != "host":
        host = stack.ports.get(svc.name)
        ports = tuple(
            (p.container_port, host if (host and i == 0) else p.preferred_host_port)
            for i, p in enumerate(svc.ports)
        )
    spec = ContainerSpec(
        project=name,
        service=svc.name,
        name=f"{name}-{svc.name}",
        image=choice.ref,
        environment=tuple(sorted(stack.environment(svc.name).items())),
        command=svc.command,
        ports=ports,
        mounts=tuple((f"{name}_{m.volume}", m.target) for m in svc.volumes),
        network_mode=svc.network_mode,
        user=svc.user,
    )
    return Desired(
        service=svc.name,
        spec=with_labels(spec, choice.identity, where),
        image=choice,
        volumes=tuple(
            (f"{name}_{m.volume}", volume_labels(name, m.volume, extra)) for m in svc.volumes
        ),
    )


class _Builder:
    """Assembles the steps in an order that is also a valid execution order."""

    def __init__(
        self, config: Config, observation: Observation, stack: Stack, desired: Mapping[str, Desired]
    ) -> None:
        self.config = config
        self.observation = observation
        self.stack = stack
        self.desired = desired
        self.out: list[Step] = []
        self.refusal: DevenvError | None = None
        # each local service's container step, decided once from the observation
        self.decided = {
            name: container_step(d, observation.engine, observation.serving)
            for name, d in desired.items()
        }

    def add(self, kind: StepKind, target: str, cause: str, after: Sequence[str] = ()) -> str:
        known = {s.id for s in self.out}
        step = Step(kind, target, cause, tuple(a for a in dict.fromkeys(after) if a in known))
        self.out.append(step)
        return step.id

    def steps(self, ports: Mapping[str, int], *, seed: bool) -> list[Step]:
        config, observation = self.config, self.observation
        setup = self._setup(ports)
        for name in SERVICES:
            if config.has(name) and not config.local(name):
                self._external(name, seed=seed)
        wanted = set(self.desired)
        for c in observation.engine.containers:
            if c.service not in wanted:
                cause = (
                    f"now bound to an external provider by profile {config.profile.name}"
                    if c.service in SERVICES and config.has(c.service)
                    else "no longer part of the stack"
                )
                self.add("remove", c.service, cause, setup)
        prepared: dict[str, list[str]] = {}
        for svc in config.project.services:
            if svc.name in self.desired:
                prepared[svc.name] = self._prepare(self.desired[svc.name])
        kinds: dict[str, StepKind] = {}
        gate = self._migrations_gate()
        for svc in config.project.services:
            if svc.name not in self.desired:
                continue
            if svc.name == "backend" and gate:
                self.add(*gate)
            kinds[svc.name] = self._container(svc, [*setup, *prepared[svc.name]])
        if seed and config.profile.dev_bypass and any(k != "keep" for k in kinds.values()):
            self.add(
                "seed-user",
                "dev-user",
                "the stack changed: upsert the dev-bypass user (it logs in as an admin)",
                [self._ready("backend"), self._ready("postgres")],
            )
        golden = self._golden_cause()
        if golden is not None:
            ready = [f"wait-ready:{name}" for name in self.desired]
            self.add("snapshot-golden", GOLDEN, golden, [*ready, "seed-user:dev-user"])
        return self.out

    def _golden_cause(self) -> str | None:
        """Why `devenv reset` needs its golden state taken now, once the stack is healthy
        (None: it has an intact one). Only local data is ever copied."""
        if not all(self.config.local(s) for s in ("postgres", "objectstore")):
            return None
        facts = self.observation.golden
        if not facts.saved:
            return "first healthy up of this project: keep its state for `devenv reset`"
        if facts.unreadable:
            return f"retake the golden snapshot: {facts.unreadable}"
        if facts.intact is False:
            return "the golden snapshot's database is gone: retake it from this healthy up"
        postgres = self.desired.get("postgres")
        volumes = {name for name, _ in postgres.volumes} if postgres else set()
        new = [s.target for s in self.out if s.kind == "create-volume" and s.target in volumes]
        if new:
            return f"volume {new[0]} is new; the golden snapshot's database went with the old one"
        return None

    # -- before any container

    def _setup(self, ports: Mapping[str, int]) -> list[str]:
        observation, stack = self.observation, self.stack
        setup: list[str] = []
        state = observation.state
        generated = sorted(n for n in observation.fresh if not (state and state.credentials.get(n)))
        why: list[str] = []
        if generated:
            why.append(f"generate credentials {', '.join(generated)}")
        known = dict(state.ports) if state is not None else {}
        moved = {s: p for s, p in ports.items() if known.get(s) != p}
        if moved:
            why.append("remember ports " + ", ".join(f"{s} {p}" for s, p in moved.items()))
        if state is not None and state.exists and not state.private:
            why.append("make the file private (mode 0600)")
        if why:
            setup.append(self.add("save-state", "state", "; ".join(why)))
        facts = observation.ports
        wanted = tuple(sorted(set(ports.values())))
        if wanted:
            stale = facts.claimed_at is None or observation.now - facts.claimed_at > CLAIM_REFRESH
            if wanted != tuple(sorted(set(facts.mine))) or stale:
                listed = ", ".join(str(p) for p in wanted)
                cause = (
                    f"keep other devenv projects off {listed}"
                    if wanted != tuple(sorted(set(facts.mine)))
                    else f"renew this project's claim on {listed}"
                )
                setup.append(self.add("claim-ports", "ports", cause))
        backend = self.desired.get("backend")
        if (
            backend is not None
            and backend.image.ref != observation.image_claim
            and not self._served_by_watch()
        ):
            setup.append(
                self.add(
                    "claim-image",
                    "backend",
                    f"record {backend.image.ref} as run by project {stack.name}: no build of "
                    "its source prunes it",
                )
            )
        return setup

    def _served_by_watch(self) -> bool:
        """The backend container stays because it serves the checkout's source (copied in by
        `devenv watch`): it runs the image it was made from, which stays claimed."""
        serving = self.observation.serving
        current = self.observation.engine.container("backend")
        kind = self.decided.get("backend", ("create", ""))[0]
        return (
            serving is not None
            and current is not None
            and serving.container == current.id
            and kind in ("keep", "start")
        )

    def _external(self, service: str, *, seed: bool) -> None:
        binding = self.config.profile.binding(service)
        how = "read-only: protected provider" if binding.protected else "not protected"
        after: list[str] = []
        if service == "objectstore" and seed and self.observation.bucket is not True:
            after.append(self._bucket_step(external=True))
        self.add("verify-external", service, f"external {service}: probe it first ({how})", after)

    def _bucket_step(self, *, after: Sequence[str] = (), external: bool = False) -> str:
        storage = self.stack.endpoints.storage
        known = self.observation.bucket
        why = (
            f"bucket {storage.bucket} does not exist"
            if known is False
            else f"the object store is not answering yet: create bucket {storage.bucket} "
            "when it does"
        )
        if external:
            why += " (seeding the external store)"
        return self.add("create-bucket", storage.bucket, why, after)

    # -- one local service

    def _prepare(self, d: Desired) -> list[str]:
        """Volumes and the image: what creating the container needs (an image is built only
        for a container that is created or recreated)."""
        ids: list[str] = []
        for name, labels in d.volumes:
            existing = self.observation.engine.volume(name)
            if existing is None:
                ids.append(self.add("create-volume", name, "volume missing"))
                continue
            old_major = existing.labels.get(LABEL_PG_MAJOR)
            new_major = dict(labels).get(LABEL_PG_MAJOR)
            if old_major and new_major and old_major != new_major and self.refusal is None:
                self.refusal = RefusedError(
                    f"service {d.service}: volume {name} holds a Postgres {old_major} data "
                    f"directory but image {d.image.ref} is Postgres {new_major}",
                    hint=f"keep a Postgres {old_major} image, or dump the data, then "
                    f"`devenv down --volumes` and restore into the new major version",
                )
        if not d.image.present and self.decided[d.service][0] in ("create", "recreate"):
            ids.append(self._acquire(d))
        return ids

    def _acquire(self, d: Desired) -> str:
        """Pull the image, or build it (after the base its recipe starts FROM)."""
        image = d.image
        if image.pull:
            cause = f"{image.why}: pull it"
            standin = self.config.service(d.service).standin
            if standin is not None and standin.recipe != "backend":
                cause += f" (offline: `--pull never` builds {standin.image} instead)"
            return self.add("pull-image", d.service, cause)
        recipe = image.recipe
        if recipe is None:
            self._refuse(
                ImageError(
                    f"service {d.service}: image {image.ref} is missing, no recipe builds it, "
                    f"and it cannot be pulled: {image.why}",
                    hint=f"pull or build it (`docker pull {image.ref}`), or add "
                    "x-devenv.standin to the service",
                )
            )
            return self.add("pull-image", d.service, f"{image.why}: cannot pull {image.ref}")
        after: list[str] = []
        if image.base is not None:
            after.append(self._base())
        if recipe == "objectstore" and not self._s3s_buildable():
            self._refuse(
                ImageError(
                    f"service {d.service}: {image.why}, whose server (s3s-fs) is built with "
                    "cargo, and this machine has no cargo",
                    hint="install Rust (https://rustup.rs), then run again"
                    + self._or_registry(d.service),
                )
            )
        cause = image.why if recipe == "backend" else f"{image.why} (recipe {recipe})"
        return self.add("build-image", d.service, cause, after)

    def _s3s_buildable(self) -> bool:
        host = self.observation.host
        return host.s3s_built or "cargo" in host.tools

    def _or_registry(self, service: str) -> str:
        svc = self.config.service(service)
        if self.config.pull_policy(svc) in ("never", "build"):
            return f", or let the registry serve {svc.image} (pull policy missing)"
        return ""

    def _refuse(self, error: DevenvError) -> None:
        if self.refusal is None:
            self.refusal = error

    def _base(self) -> str:
        """The base step, once, before the first recipe build: nothing when it is present."""
        base = base_choice(self.config, self.observation)
        if base.present:
            return ""
        step = "pull-image:base" if base.pull else "build-image:base"
        if any(s.id == step for s in self.out):
            return step
        if base.pull:
            return self.add("pull-image", "base", f"{base.why}: pull it (the recipes build on it)")
        if base.method is None:
            self._refuse(
                ImageError(
                    f"the base image {base.ref} must be built on this machine ({base.why}) "
                    "and this user cannot build it",
                    hint=base.hint,
                )
            )
            return self.add("build-image", "base", f"{base.why}: build {base.ref}: cannot here")
        return self.add("build-image", "base", f"{base.why}: build {base.ref} with {base.method}")

    def _container(self, svc: ServiceSpec, needs: list[str]) -> StepKind:
        kind, cause = self.decided[svc.name]
        gate = "verify-migrations:migrations" if svc.name == "backend" else ""
        waits = [self._condition(dep.service, dep.condition) for dep in svc.depends_on]
        # nothing of a dependent happens before its external providers answered
        externals = [w for w in waits if w.startswith("verify-external:")]
        if kind in ("create", "recreate"):
            made = self.add(kind, svc.name, cause, [*needs, gate, *externals])
            self.add("start", svc.name, "new container", [made, gate, *waits])
        else:
            self.add(kind, svc.name, cause, [*needs, gate, *waits] if kind == "start" else [])
        started = f"start:{svc.name}" if kind != "keep" else f"keep:{svc.name}"
        ready_after = [started]
        if svc.name == "objectstore" and self.observation.bucket is not True:
            ready_after.append(self._bucket_step(after=[started]))
        spec = svc.probe
        what = {"postgres": "SELECT 1 over TCP", "s3": "an S3 round trip on the bucket"}.get(
            spec.kind, f"GET {spec.path}"
        )
        self.add("wait-ready", svc.name, f"probe {what}", ready_after)
        return kind

    def _condition(self, service: str, condition: str) -> str:
        if not self.config.local(service):
            return f"verify-external:{service}"
        if condition == "healthy":
            return f"wait-ready:{service}"
        return next(
            (s.id for s in self.out if s.target == service and s.kind in ("start", "keep")),
            f"wait-ready:{service}",
        )

    def _ready(self, service: str) -> str:
        return (
            f"wait-ready:{service}" if self.config.local(service) else f"verify-external:{service}"
        )

    # -- the database against the backend source

    def _migrations_gate(self) -> tuple[StepKind, str, str, list[str]] | None:
        """Refuse a conflict now when the rows could be read, else a verify-migrations step
        that checks them once Postgres answers and before the backend container is touched."""
        from devenv.migrations import compare, conflict

        facts = self.observation.migrations
        known = facts.known
        backend = self.desired.get("backend")
        if known is None or backend is None:
            return None
        external = not self.config.local("postgres")
        if facts.applied is not None:
            verdict = compare(known, facts.applied)
            if not verdict.ok and self.refusal is None:
                self.refusal = conflict(
                    verdict, known, project=self.stack.name, source=str(known.source),
                    external=external,
                )  # fmt: skip
            return None
        if self.decided["backend"][0] == "keep":
            return None
        why = "the external Postgres did not answer" if external else "Postgres is not running yet"
        cause = f"{why}: check its migrations against {known.source} before the backend starts"
        return "verify-migrations", "migrations", cause, [self._ready("postgres")]


def plan_images(config: Config, observation: Observation, *, only: Sequence[str] = ()) -> Plan:
    """Pure: get every local service's image (or those in `only`, and `base` for the base
    alone) as `up` would, whether or not a container needs it now: `devenv images build`."""
    state = observation.state
    stack = resolve(config, state.credentials if state else {}, state.ports if state else {})
    desired = {
        svc.name: _desired(stack, svc, observation)
        for svc in config.project.services
        if config.local(svc.name)
    }
    builder = _Builder(config, observation, stack, desired)
    for name, d in desired.items():
        if (not only or name in only) and not d.image.present:
            builder._acquire(d)
    if "base" in only:
        builder._base()
    return Plan(tuple(builder.out), stack, desired, tuple(_registry_notes(observation)),
                builder.refusal)  # fmt: skip


def plan_restart(stack: Stack, engine: Observed, service: str) -> Plan:
    """Pure: restart one local service's container and wait until it answers again."""
    from devenv.errors import ConfigError

    if service not in SERVICES or not stack.config.has(service):
        raise ConfigError(f"unknown service {service!r}", hint=f"use one of: {', '.join(SERVICES)}")
    container = engine.container(service)
    error: DevenvError | None = None
    if not stack.local(service):
        error = RefusedError(
            f"{service} is an external provider (profile {stack.profile.name}): devenv does "
            "not restart it",
            hint="restart a local service",
        )
    elif container is None:
        error = RefusedError(
            f"no container for {service} (project {stack.name})", hint="run `devenv up` first"
        )
    restarted = Step("restart", service, "asked to restart")
    ready = Step("wait-ready", service, "probe it again", (restarted.id,))
    return Plan((restarted, ready), stack, {}, (), error)
