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
        self.images: dict[str, int] = {}

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

    def import_rootfs(self, tarball: Path, tag: str) -> ImageInfo:
        return ImageInfo(id="sha256:3", tags=(tag,), labels={}, env={})

    def layer_file(
        self, base: str, source: Path, dest: str, tag: str, *, labels: Mapping[str, str]
    ) -> ImageInfo:
        return ImageInfo(id="sha256:4", tags=(tag,), labels=labels, env={})

    def tag(self, image: str, ref: str) -> None:
        return None

    def tags(self, repository: str) -> list[tuple[str, int]]:
        return sorted(
            ((ref, created) for ref, created in self.images.items() if ref.startswith(repository)),
            key=lambda item: -item[1],
        )

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


def test_only_the_newest_backend_builds_are_kept() -> None:
    from devenv.images.build import prune_backend_tags

    fake = FakeRuntime()
    fake.images = {f"r/backend:src-{i}": i for i in range(6)} | {"r/backend:dev": 99}
    dropped = prune_backend_tags(fake, "r/backend", keep="r/backend:src-0")
    assert sorted(dropped) == ["r/backend:src-1", "r/backend:src-2", "r/backend:src-3"]
    assert sorted(fake.images) == [
        "r/backend:dev",
        "r/backend:src-0",
        "r/backend:src-4",
        "r/backend:src-5",
    ]
