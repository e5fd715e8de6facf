"""The Runtime protocol: everything devenv asks of a container engine, as plain data."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LABEL_PREFIX = "io.devenv"
LABEL_PROJECT = f"{LABEL_PREFIX}.project"
LABEL_SERVICE = f"{LABEL_PREFIX}.service"
LABEL_HASH = f"{LABEL_PREFIX}.config-hash"
LABEL_DIGEST = f"{LABEL_PREFIX}.config-digest"
LABEL_VOLUME = f"{LABEL_PREFIX}.volume"
LABEL_PG_MAJOR = f"{LABEL_PREFIX}.pg-major"
LABEL_RECIPE_HASH = f"{LABEL_PREFIX}.recipe-hash"
# Backend images: which source checkout they were built from (a hash of its resolved path,
# and the path itself for humans), and when, so pruning never touches another source's.
LABEL_SOURCE = f"{LABEL_PREFIX}.backend-source"
LABEL_SOURCE_PATH = f"{LABEL_PREFIX}.backend-source-path"
LABEL_BUILT_AT = f"{LABEL_PREFIX}.built-at"
LABEL_GLIBC = f"{LABEL_PREFIX}.glibc"  # on the base image: its glibc version
# Containers and volumes: where the project lives (its root: the checkout that holds
# .devenv/<project>) and the profile it was brought up with, so that `devenv ls` can say
# which checkout each stack belongs to and `down --project` can find it from anywhere.
# Not part of the config hash: adding them recreates nothing.
LABEL_CHECKOUT = f"{LABEL_PREFIX}.checkout"
LABEL_PROFILE = f"{LABEL_PREFIX}.profile"
# On stand-in images: the base they were built on (`debian:bookworm-slim` or the debootstrapped
# base), which their recipe hash is salted with.
LABEL_BASE = f"{LABEL_PREFIX}.base"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ContainerSpec:
    """A fully resolved container: what the adapter turns into one engine call."""

    project: str
    service: str
    name: str
    image: str
    environment: tuple[tuple[str, str], ...]
    command: tuple[str, ...] | None
    ports: tuple[tuple[int, int], ...]  # (container port, host port), always on loopback
    mounts: tuple[tuple[str, str], ...]  # (engine volume name, target)
    network_mode: str | None
    user: str | None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    service: str
    state: str  # created | running | restarting | exited | paused | dead
    config_hash: str
    image: str
    exit_code: int = 0
    host_ports: tuple[int, ...] = ()
    restart_count: int = 0
    digest: tuple[tuple[str, str], ...] = ()  # per-field short hashes, to explain a recreate
    labels: tuple[tuple[str, str], ...] = ()
    created: float = 0.0  # seconds since the epoch

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


@dataclass(frozen=True)
class ObservedVolume:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    env: Mapping[str, str]
    created: int = 0
    digests: tuple[str, ...] = ()  # RepoDigests: `name@sha256:...` of a pulled image


@dataclass(frozen=True)
class RegistryAnswer:
    """What the engine learnt from an image's registry about one reference, read-only
    (`GET /distribution/{ref}/json`): the manifest digest, or the engine's error."""

    ref: str
    digest: str | None = None
    error: str = ""  # first line of the engine's answer, when there is no digest
    status: int | None = None  # the engine's HTTP status; None: no answer in time


@dataclass(frozen=True)
class Observed:
    """One snapshot of what the engine holds for a project, taken before any decision.

    `published` maps every host port a container on the engine publishes (any project, any
    tool) to that container's name: who holds a port devenv wanted.
    """

    containers: tuple[ObservedContainer, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    published: Mapping[int, str] = field(default_factory=dict)

    def container(self, service: str) -> ObservedContainer | None:
        for c in self.containers:
            if c.service == service:
                return c
        return None

    def volume(self, name: str) -> ObservedVolume | None:
        for v in self.volumes:
            if v.name == name:
                return v
        return None


class Runtime(Protocol):
    def observe(self, project: str) -> Observed: ...

    def observe_all(self) -> Observed:
        """Every devenv container and volume on the engine, of any project (`devenv ls`)."""
        ...

    def image(self, ref: str) -> ImageInfo | None: ...

    def lookup(self, ref: str, *, timeout: float) -> RegistryAnswer: ...

    def pull(
        self,
        ref: str,
        *,
        events: Callable[[Mapping[str, object]], None],
        stop: Callable[[], bool],
        idle: float,
    ) -> ImageInfo: ...

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        progress: Progress,
    ) -> ImageInfo: ...

    def import_rootfs(
        self, tarball: Path, tag: str, *, labels: Mapping[str, str] | None = None
    ) -> ImageInfo: ...

    def read_file(self, image: str, path: str) -> bytes | None: ...

    def layer_file(
        self, base: str, source: Path, dest: str, tag: str, *, labels: Mapping[str, str]
    ) -> ImageInfo: ...

    def tag(self, image: str, ref: str) -> None: ...

    def list_images(self, repository: str) -> list[ImageInfo]: ...

    def images_in_use(self) -> set[str]: ...

    def untag(self, ref: str) -> bool: ...

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None: ...

    def remove_volume(self, name: str) -> None: ...

    def create(self, spec: ContainerSpec) -> str: ...

    def start(self, container_id: str, *, service: str = "") -> None: ...

    def stop(self, container_id: str, timeout: int = 10) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def inspect_state(self, container_id: str) -> ObservedContainer | None: ...

    def put_file(self, container_id: str, source: Path, dest: str) -> None: ...

    def logs(self, container_id: str, tail: int = 20) -> str: ...

    def follow_logs(self, container_id: str) -> Iterator[str]: ...
