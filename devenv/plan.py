"""Reconcile: desired containers + one observed snapshot -> a plan of steps, each with a cause."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from devenv.errors import RefusedError
from devenv.runtime.base import (
    LABEL_DIGEST,
    LABEL_HASH,
    LABEL_PG_MAJOR,
    LABEL_PROJECT,
    LABEL_SERVICE,
    LABEL_VOLUME,
    ContainerSpec,
    Observed,
)


@dataclass(frozen=True)
class ImageChoice:
    """The image a service will run, and how to get it when it is missing."""

    ref: str
    identity: str  # what the config hash sees: image id, recipe hash or source fingerprint
    present: bool
    recipe: str | None = None  # build this stand-in recipe when not present
    pg_major: str | None = None


@dataclass(frozen=True)
class Desired:
    service: str
    spec: ContainerSpec
    image: ImageChoice
    volumes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (engine name, labels)
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    kind: str  # build | volume | remove | recreate | create | start | keep
    target: str
    cause: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    order: tuple[str, ...] = field(default=())

    @property
    def noop(self) -> bool:
        return all(step.kind == "keep" for step in self.steps)

    def for_target(self, target: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.target == target)

    def text(self) -> str:
        return "\n".join(f"{s.kind:<9}{s.target:<22}{s.cause}" for s in self.steps)


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


def with_labels(spec: ContainerSpec, image_identity: str) -> ContainerSpec:
    """The spec with devenv's labels: project, service, config hash and per-field digest."""
    digest = config_digest(spec, image_identity)
    blob = json.dumps(digest, sort_keys=True)
    labels = {
        LABEL_PROJECT: spec.project,
        LABEL_SERVICE: spec.service,
        LABEL_HASH: _short(blob),
        LABEL_DIGEST: blob,
    }
    return replace(spec, labels=tuple(sorted(labels.items())))


def _changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def reconcile(
    desired: Sequence[Desired],
    observed: Observed,
    *,
    removed_cause: Mapping[str, str] | None = None,
) -> Plan:
    """Pure: what to do so that the engine matches `desired`. Raises RefusedError when unsafe."""
    steps: list[Step] = []
    wanted = {d.service for d in desired}
    for c in observed.containers:
        if c.service not in wanted:
            cause = (removed_cause or {}).get(c.service, "no longer part of the stack")
            steps.append(Step("remove", c.service, cause))
    for d in desired:
        if not d.image.present:
            steps.append(
                Step(
                    "build",
                    d.service,
                    f"image {d.image.ref} missing: build recipe {d.image.recipe}",
                )
            )
        for name, labels in d.volumes:
            existing = observed.volume(name)
            if existing is None:
                steps.append(Step("volume", name, "volume missing: create it"))
                continue
            old_major = existing.labels.get(LABEL_PG_MAJOR)
            new_major = dict(labels).get(LABEL_PG_MAJOR)
            if old_major and new_major and old_major != new_major:
                raise RefusedError(
                    f"service {d.service}: volume {name} holds a Postgres {old_major} data "
                    f"directory but image {d.image.ref} is Postgres {new_major}",
                    hint=f"keep a Postgres {old_major} image, or dump the data, then "
                    f"`devenv down --volumes` and restore into the new major version",
                )
        steps.append(_container_step(d, observed))
    return Plan(steps=tuple(steps), order=tuple(d.service for d in desired))


def _container_step(d: Desired, observed: Observed) -> Step:
    current = observed.container(d.service)
    if current is None:
        return Step("create", d.service, "no container yet")
    new_hash = dict(d.spec.labels).get(LABEL_HASH, "")
    if current.config_hash != new_hash:
        new_digest = json.loads(dict(d.spec.labels).get(LABEL_DIGEST, "{}"))
        changed = _changed(dict(current.digest), new_digest) or ["labels"]
        shown = ", ".join(changed[:4]) + (
            f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
        )
        return Step("recreate", d.service, f"config changed: {shown}")
    if current.state != "running":
        how = (
            f"exited with code {current.exit_code}" if current.state == "exited" else current.state
        )
        return Step("start", d.service, f"container {how}")
    return Step("keep", d.service, "up to date")


def volume_labels(
    project: str, logical: str, extra: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    labels = {LABEL_PROJECT: project, LABEL_VOLUME: logical, **extra}
    return tuple(sorted(labels.items()))
