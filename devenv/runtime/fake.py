"""In-memory fakes of devenv's adapters: an engine (FakeRuntime) and the stack's services
(FakeClients), for unit tests of the executor and the use cases without Docker or network.

Both write what was asked of them, in order, to one shared `journal` (a list of short lines
such as "create backend" or "probe postgres"), so that tests can assert what happened before
what. mypy holds FakeRuntime to the Runtime protocol (the typed assignment at the bottom).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.errors import DevenvError, EngineError, ImageError
from devenv.probes.base import ProbeFailure
from devenv.runtime.base import (
    LABEL_DIGEST,
    LABEL_HASH,
    LABEL_PROJECT,
    LABEL_SERVICE,
    ContainerSpec,
    ImageInfo,
    Observed,
    ObservedContainer,
    ObservedVolume,
    Progress,
    RegistryAnswer,
    Runtime,
)

if TYPE_CHECKING:
    from devenv.migrations import AppliedMigration
    from devenv.probes.base import Probe
    from devenv.probes.clients import Clients
    from devenv.snapshot.model import GoldenFacts, Provenance
    from devenv.stack import Stack


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    state: str = "created"
    exit_code: int = 0
    logs: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # put into it after it was made


class FakeRuntime:
    """An engine in memory. `exits` names services whose container dies right after start
    (with `exit_logs`); `refuse` makes `start` of a service fail with that error."""

    def __init__(self, journal: list[str] | None = None) -> None:
        self.journal = journal if journal is not None else []
        self.containers: dict[str, FakeContainer] = {}
        self.volumes: dict[str, Mapping[str, str]] = {}
        self.images: dict[str, ImageInfo] = {}  # by tag
        # what the registry holds (a pull adds it to `images`); unlisted: unreachable
        self.registry: dict[str, ImageInfo] = {}
        self.registry_down = "dial tcp: lookup registry-1.docker.io: no such host"
        self.in_use: set[str] = set()
        self.exits: dict[str, int] = {}
        self.exit_logs = ""
        self.refuse: dict[str, DevenvError] = {}
        self._lock = threading.Lock()
        self._next = 0

    def _log(self, line: str) -> None:
        with self._lock:
            self.journal.append(line)

    # --- observe -------------------------------------------------------------------------
    def observe(self, project: str) -> Observed:
        mine = [c for c in self.containers.values() if c.spec.project == project]
        published = {
            host: c.spec.name for c in self.containers.values() for _, host in c.spec.ports
        }
        return Observed(
            containers=tuple(sorted((self._observed(c) for c in mine), key=lambda c: c.service)),
            volumes=tuple(
                ObservedVolume(name, labels)
                for name, labels in sorted(self.volumes.items())
                if labels.get(LABEL_PROJECT) == project
            ),
            published=published,
        )

    def observe_all(self) -> Observed:
        return Observed(
            containers=tuple(
                self._observed(c)
                for c in self.containers.values()
                if dict(c.spec.labels).get(LABEL_PROJECT)
            ),
            volumes=tuple(
                ObservedVolume(name, labels)
                for name, labels in sorted(self.volumes.items())
                if labels.get(LABEL_PROJECT)
            ),
        )

    @staticmethod
    def _observed(c: FakeContainer) -> ObservedContainer:
        import json

        labels = dict(c.spec.labels)
        digest = json.loads(labels.get(LABEL_DIGEST, "{}"))
        return ObservedContainer(
            id=c.id,
            name=c.spec.name,
            service=labels.get(LABEL_SERVICE, c.spec.service),
            state=c.state,
            config_hash=labels.get(LABEL_HASH, ""),
            image=c.spec.image,
            exit_code=c.exit_code,
            host_ports=tuple(h for _, h in c.spec.ports),
            digest=tuple(sorted(digest.items())),
            labels=tuple(sorted(labels.items())),
        )

    def inspect_state(self, container_id: str) -> ObservedContainer | None:
        found = self.containers.get(container_id)
        return self._observed(found) if found is not None else None

    # --- images --------------------------------------------------------------------------
    def image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def lookup(self, ref: str, *, timeout: float) -> RegistryAnswer:
        self._log(f"lookup {ref}")
        found = self.registry.get(ref)
        if found is not None:
            return RegistryAnswer(ref, found.digests[0].partition("@")[2], "", 200)
        if self.registry:
            return RegistryAnswer(ref, None, "manifest unknown", 404)
        return RegistryAnswer(
            ref, None, f'Get "https://registry-1.docker.io/v2/": {self.registry_down}', 500
        )

    def pull(
        self,
        ref: str,
        *,
        events: Callable[[Mapping[str, object]], None],
        stop: Callable[[], bool],
        idle: float,
    ) -> ImageInfo:
        self._log(f"pull {ref}")
        found = self.registry.get(ref)
        if found is None:
            raise ImageError(f"pulling {ref} failed: not found")
        events({"status": "Pulling fs layer", "id": "l1", "progressDetail": {}})
        detail = {"current": 1_000_000, "total": 2_000_000}
        events({"status": "Downloading", "id": "l1", "progressDetail": detail})
        events({"status": "Pull complete", "id": "l1", "progressDetail": {}})
        self.images[ref] = found
        return found

    def add_image(self, ref: str, **labels: str) -> ImageInfo:
        info = ImageInfo(id=f"sha256:{ref}", tags=(ref,), labels=labels, env={})
        self.images[ref] = info
        return info

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        progress: Progress,
    ) -> ImageInfo:
        self._log(f"build {tag}")
        return self.add_image(tag, **labels)

    def import_rootfs(
        self, tarball: Path, tag: str, *, labels: Mapping[str, str] | None = None
    ) -> ImageInfo:
        self._log(f"import {tag}")
        return self.add_image(tag, **(labels or {}))

    def read_file(self, image: str, path: str) -> bytes | None:
        return None

    def layer_file(
        self, base: str, source: Path, dest: str, tag: str, *, labels: Mapping[str, str]
    ) -> ImageInfo:
        self._log(f"layer {tag}")
        return self.add_image(tag, **labels)

    def tag(self, image: str, ref: str) -> None:
        found = self.images.get(image)
        if found is not None:
            self.images[ref] = found

    def list_images(self, repository: str) -> list[ImageInfo]:
        by_id: dict[str, ImageInfo] = {}
        for ref, info in self.images.items():
            if ref.rpartition(":")[0] == repository:
                known = by_id.get(info.id)
                tags = (*known.tags, ref) if known else (ref,)
                by_id[info.id] = ImageInfo(info.id, tags, info.labels, {}, info.created)
        return list(by_id.values())

    def images_in_use(self) -> set[str]:
        return set(self.in_use)

    def untag(self, ref: str) -> bool:
        return self.images.pop(ref, None) is not None

    # --- volumes -------------------------------------------------------------------------
    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self._log(f"create-volume {name}")
        self.volumes[name] = dict(labels)

    def remove_volume(self, name: str) -> None:
        users = [c.spec.name for c in self.containers.values() if name in dict(c.spec.mounts)]
        if users:
            raise EngineError(f"volume {name} is in use by {', '.join(users)}")
        self._log(f"remove-volume {name}")
        self.volumes.pop(name, None)

    # --- containers ----------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        self._log(f"create {spec.service}")
        with self._lock:
            self._next += 1
            cid = f"{spec.service}-{self._next}"
        self.containers[cid] = FakeContainer(cid, spec)
        return cid

    def start(self, container_id: str, *, service: str = "") -> None:
        c = self.containers[container_id]
        self._log(f"start {c.spec.service}")
        refused = self.refuse.get(c.spec.service)
        if refused is not None:
            raise refused
        if c.spec.service in self.exits:
            c.state, c.exit_code, c.logs = "exited", self.exits[c.spec.service], self.exit_logs
        else:
            c.state = "running"

    def stop(self, container_id: str, timeout: int = 10) -> None:
        c = self.containers.get(container_id)
        if c is not None:
            self._log(f"stop {c.spec.service}")
            c.state = "exited"

    def remove(self, container_id: str) -> None:
        c = self.containers.pop(container_id, None)
        if c is not None:
            self._log(f"remove {c.spec.service}")

    def put_file(self, container_id: str, source: Path, dest: str) -> None:
        c = self.containers.get(container_id)
        if c is None:
            raise EngineError(f"no container {container_id}")
        self._log(f"put {c.spec.service} {dest}")
        c.files[dest] = source.read_bytes()

    def logs(self, container_id: str, tail: int = 20) -> str:
        c = self.containers.get(container_id)
        return c.logs if c is not None else ""

    def follow_logs(self, container_id: str) -> Iterator[str]:
        return iter(self.logs(container_id).splitlines(keepends=True))


# --- the stack's services ------------------------------------------------------------------

# How a fake service answers its probe: "ready", a number of failed attempts before it is,
# "never" (transient failures until the deadline), or "refused" (a permanent failure).
Answer = str | int


@dataclass
class FakeProbe:
    name: str
    endpoint: str
    answer: Callable[[], str]

    def attempt(self) -> str:
        return self.answer()


@dataclass
class FakeClients:
    """The stack's services in memory: readiness per service, a bucket, migration rows."""

    journal: list[str] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)  # service -> how it answers
    bucket: bool = False
    objects: set[str] = field(default_factory=set)
    applied: tuple[AppliedMigration, ...] = ()
    seeded: int = 0
    golden_taken: int = 0  # golden snapshots taken (one is kept)
    golden_error: str = ""  # taking the golden snapshot fails with this
    writes: list[str] = field(default_factory=list)  # every write asked of a provider
    stack: Stack | None = None  # the stack it was last made for
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _log(self, line: str) -> None:
        with self._lock:
            self.journal.append(line)

    def __call__(self, stack: Stack) -> FakeClients:
        """Use as the `clients` adapter: the same fake for every stack (remembered last)."""
        self.stack = stack
        return self

    def probe(self, service: str, *, write: bool = True) -> Probe:
        def answer() -> str:
            self._log(f"probe {service}" if write else f"probe {service} (read-only)")
            how = self.answers.get(service, "ready")
            if isinstance(how, int) and not isinstance(how, bool):
                if how > 0:
                    self.answers[service] = how - 1
                    raise ProbeFailure("not yet")
                return "ready"
            if how == "never":
                raise ProbeFailure("connection refused")
            if how == "refused":
                raise ProbeFailure("password authentication failed", transient=False)
            return "ready"

        return FakeProbe(service, f"fake://{service}", answer)

    def bucket_exists(self) -> bool:
        self._log("head bucket")
        return self.bucket

    def create_bucket(self) -> None:
        self._log("create bucket")
        self.writes.append("create bucket")
        self.bucket = True

    def applied_migrations(self) -> tuple[AppliedMigration, ...]:
        self._log("read migrations")
        return self.applied

    def seed_dev_user(self) -> None:
        self._log("seed user")
        self.writes.append("seed user")
        self.seeded += 1

    def object_exists(self, key: str) -> bool:
        return key in self.objects

    def golden(self, *, ask_database: bool) -> GoldenFacts:
        from devenv.snapshot.model import GoldenFacts

        self._log("read golden")
        saved = self.golden_taken > 0
        return GoldenFacts(saved=saved, intact=True if saved and ask_database else None)

    def take_golden(self, made: Provenance) -> str:
        self._log("snapshot golden")
        if self.golden_error:
            raise ProbeFailure(self.golden_error, transient=False)
        self.writes.append("snapshot golden")
        self.golden_taken += 1
        return "golden snapshot taken"


_: Runtime = FakeRuntime()  # mypy: the fake is a Runtime
_clients: Clients = FakeClients()  # mypy: the fake answers like the real clients
