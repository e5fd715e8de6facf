"""Pure translation to the engine's create body, the state file, and the fake engine."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import devenv
from devenv.errors import LockedError
from devenv.runtime.base import ContainerSpec, ImageInfo
from devenv.runtime.docker import demultiplex, observed_container, to_create_body
from devenv.runtime.fake import FakeRuntime
from devenv.state import load_state, new_secret, project_lock, save_state


def _spec(network_mode: str | None = None) -> ContainerSpec:
    return ContainerSpec(
        project="p",
        service="postgres",
        name="p-postgres",
        image="devenv-standin/postgres:15",
        environment=(("POSTGRES_USER", "ignition"),),
        command=("postgres",),
        ports=((5432, 40001),),
        mounts=(("p_pgdata", "/var/lib/postgresql/data"),),
        network_mode=network_mode,
        user=None,
        labels=(("io.devenv.project", "p"),),
    )


def test_ports_are_published_on_loopback_only() -> None:
    body = to_create_body(_spec())
    host = body["HostConfig"]
    assert host["PortBindings"] == {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}]}
    assert body["ExposedPorts"] == {"5432/tcp": {}}
    assert host["Privileged"] is False
    assert host["Init"] is True
    assert host["Binds"] == ["p_pgdata:/var/lib/postgresql/data:rw"]
    assert body["Labels"] == {"io.devenv.project": "p"}
    assert body["Cmd"] == ["postgres"]
    assert body["Env"] == ["POSTGRES_USER=ignition"]


def test_host_network_publishes_nothing() -> None:
    body = to_create_body(_spec(network_mode="host"))
    assert "PortBindings" not in body["HostConfig"]
    assert "ExposedPorts" not in body
    assert body["HostConfig"]["NetworkMode"] == "host"


def test_container_list_entry_and_log_frames_are_read() -> None:
    raw = {
        "Id": "abc",
        "Names": ["/p-postgres"],
        "State": "exited",
        "Status": "Exited (137) 3 seconds ago",
        "Image": "img",
        "Labels": {"io.devenv.service": "postgres", "io.devenv.config-hash": "h"},
        "Ports": [{"PublicPort": 40001, "PrivatePort": 5432}, {"PrivatePort": 1}],
    }
    found = observed_container(raw)
    assert (found.name, found.service, found.exit_code, found.host_ports) == (
        "p-postgres", "postgres", 137, (40001,),
    )  # fmt: skip
    frames = b"\x01\0\0\0\0\0\0\x06hello\n" + b"\x02\0\0\0\0\0\0\x04oops"
    assert demultiplex(frames) == "hello\noops"
    assert demultiplex(b"plain tty output") == "plain tty output"


def test_state_file_is_written_0600_and_read_back(tmp_path: Path) -> None:
    state = load_state(tmp_path, "proj")
    assert not state.exists
    password = new_secret(24)
    save_state(state.path, {"postgres_password": password}, {"postgres": 5432})
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    again = load_state(tmp_path, "proj")
    assert (again.exists, again.private) == (True, True)
    assert again.credentials == {"postgres_password": password}
    assert again.ports == {"postgres": 5432}
    assert len(password) == 24
    assert password.isalnum()
    state.path.chmod(0o644)
    assert load_state(tmp_path, "proj").private is False  # read as it is: `up` tightens it
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o644


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with (
        project_lock(tmp_path, "proj"),
        pytest.raises(LockedError, match="another devenv"),
        project_lock(tmp_path, "proj", wait=0.1),
    ):
        pass
    with project_lock(tmp_path, "proj", wait=0.1):
        pass


def test_fake_runtime_keeps_containers_by_project() -> None:
    runtime = FakeRuntime()
    cid = runtime.create(_spec())
    runtime.start(cid, service="postgres")
    found = runtime.observe("p").container("postgres")
    assert found is not None
    assert found.state == "running"
    assert runtime.observe("other").containers == ()
    runtime.remove(cid)
    assert runtime.observe("p").container("postgres") is None
    assert runtime.journal == ["create postgres", "start postgres", "remove postgres"]


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
