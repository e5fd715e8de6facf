"""Backend images on the real engine: per-source labels, pruning that keeps to one source and
spares what any project uses or claims, and the glibc check before packaging."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from devenv.errors import ImageError
from devenv.images import elf
from devenv.images.build import base_glibc, check_glibc, package_backend
from devenv.images.identity import BASE_TAG
from devenv.model import BackendBuild, ImageChoice
from devenv.runtime.base import LABEL_SOURCE, LABEL_SOURCE_PATH
from devenv.runtime.docker import DockerRuntime
from devenv.state import image_claims
from tests.integration.conftest import REPO, unique_project
from tests.unit.test_elf import patched

REFERENCE_IMAGE = "devenv-standin/backend:dev"  # the reference backend's latest build


def _engine() -> Any:
    return docker.from_env(version="auto")


def _quiet(_: str) -> None:
    return None


@pytest.fixture
def repository(images: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A backend image repository of the test's own, and a machine cache (claims) of its own."""
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path / "cache"))
    name = f"devenv-test/backend-{uuid.uuid4().hex[:8]}"
    yield name
    engine = _engine()
    for image in engine.images.list(name=name):
        engine.images.remove(image.id, force=True)


def _checkout(path: Path) -> Path:
    """A stand-in checkout: only what packaging reads (the reference Dockerfile.runtime)."""
    path.mkdir(parents=True)
    shutil.copy2(REPO / "backend" / "Dockerfile.runtime", path / "Dockerfile.runtime")
    return path


def _binary(tmp_path: Path) -> Path:
    found = shutil.which("true")
    assert found is not None
    dest = tmp_path / "ignition-api"
    shutil.copy2(found, dest)
    return dest


def _tags(repository: str) -> dict[str, set[str]]:
    """src- tags of the repository, by the source path label of their image."""
    found: dict[str, set[str]] = {}
    for image in _engine().images.list(name=repository):
        source = image.labels.get(LABEL_SOURCE_PATH, "")
        for tag in image.tags:
            found.setdefault(source, set()).add(tag.rpartition(":")[2])
    return found


def test_two_projects_two_sources_prune_only_stale_images_of_the_same_source(
    repository: str, tmp_path: Path
) -> None:
    runtime = DockerRuntime()
    binary = _binary(tmp_path)
    sources = {"a": _checkout(tmp_path / "src-a"), "b": _checkout(tmp_path / "src-b")}
    first, second = unique_project(), unique_project()

    def build(name: str) -> str:
        ref = f"{repository}:src-{name}"
        choice = ImageChoice(ref=ref, identity=name, present=False, recipe="backend")
        info = package_backend(
            runtime,
            REPO,
            choice,
            build=BackendBuild(sources[name[0]]),
            binary=binary,
            progress=_quiet,
        )
        assert info.labels[LABEL_SOURCE] == BackendBuild(sources[name[0]]).source_id
        assert info.labels[LABEL_SOURCE_PATH] == str(sources[name[0]].resolve())
        return ref

    a1 = build("a1")
    with image_claims(first) as claims:  # the first project runs a1 (source a)
        claims.claim(a1, source=str(sources["a"]))
    b1 = build("b1")  # the second project's backend container was made from b1
    container = _engine().containers.create(
        b1, name=f"{second}-backend", labels={"io.devenv.project": second}
    )
    try:
        for name in ("a2", "a3", "a4", "a5"):
            build(name)
        b2 = build("b2")
        with image_claims(second) as claims:  # ... and its next up will run b2
            claims.claim(b2, source=str(sources["b"]))
        for name in ("b3", "b4", "b5", "b6"):
            build(name)
    finally:
        container.remove(force=True)

    tags = _tags(repository)
    a, b = str(sources["a"].resolve()), str(sources["b"].resolve())
    # a: the newest three, and a1 that the first project claims; a2 was stale
    assert tags[a] == {"src-a5", "src-a4", "src-a3", "src-a1"}
    # b: the newest three, b2 (claimed) and b1 (a container uses it); b3 was stale.
    # Building b never touched a's images, and building a never touched b's.
    assert tags[b] == {"src-b6", "src-b5", "src-b4", "src-b2", "src-b1"}
    assert set(tags) == {a, b}


def test_a_binary_needing_a_newer_glibc_than_the_base_is_refused(
    repository: str, tmp_path: Path
) -> None:
    runtime = DockerRuntime()
    real = runtime.read_file(REFERENCE_IMAGE, "/app/ignition-api")
    assert real is not None, f"{REFERENCE_IMAGE} has no /app/ignition-api"
    binary = tmp_path / "ignition-api"
    binary.write_bytes(real)
    base = runtime.image(BASE_TAG)
    assert base is not None
    have = base_glibc(runtime, base)
    assert have is not None
    needed = elf.required_glibc(binary)
    assert needed is not None
    assert needed <= have
    check_glibc(runtime, binary, _quiet)  # the real backend binary passes

    (tmp_path / "newer").mkdir()
    newer = patched(binary, tmp_path / "newer" / "ignition-api", "2.99")
    checkout = _checkout(tmp_path / "src")
    choice = ImageChoice(ref=f"{repository}:src-x", identity="x", present=False, recipe="backend")
    with pytest.raises(ImageError) as info:
        package_backend(
            runtime, REPO, choice, build=BackendBuild(checkout), binary=newer, progress=_quiet
        )
    line = info.value.one_line()
    assert "\n" not in line
    assert "needs glibc 2.99 (GLIBC_2.99)" in line
    assert re.search(rf"{re.escape(BASE_TAG)} has glibc {elf.show(have)}\b", line)
    assert "Debian bookworm" in line
    assert _engine().images.list(name=repository) == []
