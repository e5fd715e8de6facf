"""Pure translation to docker SDK arguments, the state file, and the Runtime protocol's fake."""

from __future__ import annotations

import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import devenv
from devenv.errors import LockedError
from devenv.runtime.base import ContainerSpec, ImageInfo, Observed, ObservedContainer, Runtime
from devenv.runtime.docker import to_run_kwargs
from devenv.state import load_state, project_lock


def _spec(network_mode: str | None = None) -> ContainerSpec:
    return ContainerSpec(
        project="p",
        service="postgres",
        name="p-postgres",
        image="devenv-standin/postgres:15",
        image_id="",
        environment=(("POSTGRES_USER", "ignition"),),
        command=("postgres",),
        ports=((5432, 40001),),
        mounts=(("p_pgdata", "/var/lib/postgresql/data"),),
        network_mode=network_mode,
        user=None,
        labels=(("io.devenv.project", "p"),),
    )


def test_ports_are_published_on_loopback_only() -> None:
    kwargs = to_run_kwargs(_spec())
    assert kwargs["ports"] == {"5432/tcp": ("127.0.0.1", 40001)}
    assert kwargs["privileged"] is False
    assert kwargs["volumes"] == {"p_pgdata": {"bind": "/var/lib/postgresql/data", "mode": "rw"}}
    assert kwargs["labels"] == {"io.devenv.project": "p"}
    assert kwargs["command"] == ["postgres"]


def test_host_network_publishes_nothing() -> None:
    kwargs = to_run_kwargs(_spec(network_mode="host"))
    assert "ports" not in kwargs
    assert kwargs["network_mode"] == "host"


def test_state_file_is_created_0600_and_credentials_are_stable(tmp_path: Path) -> None:
    state = load_state(tmp_path, "proj")
    first = state.credential("postgres_password")
    state.save()
    mode = stat.S_IMODE(state.path.stat().st_mode)
    assert mode == 0o600
    again = load_state(tmp_path, "proj")
    assert again.credential("postgres_password") == first
    assert len(first) == 24


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with (
        project_lock(tmp_path, "proj"),
        pytest.raises(LockedError, match="another devenv"),
        project_lock(tmp_path, "proj", wait=0.1),
    ):
        pass
    with project_lock(tmp_path, "proj", wait=0.1):
        pass


class FakeRuntime:
    """An in-memory engine; mypy proves it satisfies the Runtime protocol."""

    def __init__(self) -> None:
        self.containers: dict[str, ObservedContainer] = {}
        self.images: dict[str, ImageInfo] = {}  # by tag
        self.in_use: set[str] = set()

    def observe(self, project: str) -> Observed:
        return Observed(tuple(self.containers.values()), ())

    def image(self, ref: str) -> ImageInfo | None:
        return ImageInfo(id="sha256:1", tags=(ref,), labels={}, env={})

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        progress: object,
    ) -> ImageInfo:
        return ImageInfo(id="sha256:2", tags=(tag,), labels=labels, env={})

    def import_rootfs(
        self, tarball: Path, tag: str, *, labels: Mapping[str, str] | None = None
    ) -> ImageInfo:
        return ImageInfo(id="sha256:3", tags=(tag,), labels=labels or {}, env={})

    def read_file(self, image: str, path: str) -> bytes | None:
        return None

    def layer_file(
        self, base: str, source: Path, dest: str, tag: str, *, labels: Mapping[str, str]
    ) -> ImageInfo:
        return ImageInfo(id="sha256:4", tags=(tag,), labels=labels, env={})

    def tag(self, image: str, ref: str) -> None:
        return None

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

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        return None

    def remove_volume(self, name: str) -> None:
        return None

    def run(self, spec: ContainerSpec) -> str:
        self.containers[spec.service] = ObservedContainer(
            id=spec.name,
            name=spec.name,
            service=spec.service,
            state="running",
            config_hash="",
            image=spec.image,
        )
        return spec.name

    def create(self, spec: ContainerSpec) -> str:
        return self.run(spec)

    def start(self, container_id: str, *, service: str = "") -> None:
        return None

    def stop(self, container_id: str, timeout: int = 10) -> None:
        return None

    def remove(self, container_id: str) -> None:
        self.containers = {k: v for k, v in self.containers.items() if v.id != container_id}

    def inspect_state(self, container_id: str) -> ObservedContainer | None:
        return next((c for c in self.containers.values() if c.id == container_id), None)

    def logs(self, container_id: str, tail: int = 20) -> str:
        return ""

    def follow_logs(self, container_id: str) -> Iterator[str]:
        return iter(())

    def port_holder(self, host_port: int) -> str | None:
        return None


def test_fake_runtime_conforms_to_the_protocol() -> None:
    runtime: Runtime = FakeRuntime()
    cid = runtime.run(_spec())
    assert runtime.observe("p").container("postgres") is not None
    runtime.remove(cid)
    assert runtime.observe("p").container("postgres") is None


def test_public_surface() -> None:
    assert devenv.__all__ == ["__version__"]
    assert devenv.__version__.count(".") == 2


def _build(fake: FakeRuntime, ref: str, source: str, at: int, *also: str) -> str:
    from devenv.runtime.base import LABEL_BUILT_AT, LABEL_SOURCE

    info = ImageInfo(f"sha256:{ref}", (ref,), {LABEL_SOURCE: source, LABEL_BUILT_AT: str(at)}, {})
    for tag in (ref, *also):
        fake.images[tag] = info
    return info.id


def test_pruning_keeps_the_newest_builds_of_one_source_and_everything_else() -> None:
    from devenv.images.build import prune_backend_images

    fake = FakeRuntime()
    for i in range(7):
        _build(fake, f"r/backend:src-a{i}", "A", i)
    for i in range(5):
        _build(fake, f"r/backend:src-b{i}", "B", i)
    fake.images["r/backend:src-legacy"] = ImageInfo("sha256:legacy", (), {}, {})
    _build(fake, "r/backend:src-a-latest", "A", 99, "r/backend:dev")
    used = _build(fake, "r/backend:src-a-used", "A", -1)
    fake.in_use.add(used)
    dropped = prune_backend_images(
        fake,
        "r/backend",
        source="A",
        keep="r/backend:src-a0",
        protected={"r/backend:src-a2", "sha256:r/backend:src-a3"},
    )
    # kept: the build asked for, the two newest others, what a container uses or a project claims
    assert sorted(dropped) == ["r/backend:src-a1", "r/backend:src-a4", "r/backend:src-a5"]
    assert {"r/backend:src-a0", "r/backend:src-a6", "r/backend:src-a-latest"} <= set(fake.images)
    assert {"r/backend:src-a2", "r/backend:src-a3", "r/backend:src-a-used"} <= set(fake.images)
    assert all(f"r/backend:src-b{i}" in fake.images for i in range(5))
    assert "r/backend:src-legacy" in fake.images
    assert "r/backend:dev" in fake.images
