"""The Docker engine adapter: the only module that imports the docker SDK."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from devenv.errors import DevenvError, DockerUnavailableError, ImageError, PortConflictError
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
)

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


def to_run_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """Pure translation of a ContainerSpec into docker SDK `containers.create` arguments."""
    kwargs: dict[str, Any] = {
        "image": spec.image_id or spec.image,
        "name": spec.name,
        "environment": dict(spec.environment),
        "labels": dict(spec.labels),
        "detach": True,
        "privileged": False,
        "init": True,
    }
    if spec.command is not None:
        kwargs["command"] = list(spec.command)
    if spec.network_mode:
        kwargs["network_mode"] = spec.network_mode
    else:
        kwargs["ports"] = {f"{c}/tcp": (LOOPBACK, h) for c, h in spec.ports}
    if spec.mounts:
        kwargs["volumes"] = {vol: {"bind": target, "mode": "rw"} for vol, target in spec.mounts}
    if spec.user:
        kwargs["user"] = spec.user
    return kwargs


def _digest(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    try:
        raw = json.loads(labels.get(LABEL_DIGEST) or "{}")
    except ValueError:
        return ()
    if not isinstance(raw, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def _describe(exc: Exception) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


class DockerRuntime:
    """Runtime backed by the Docker engine found from the environment (DOCKER_HOST or socket)."""

    def __init__(self) -> None:
        import docker  # heavy: imported only when the engine is needed

        self._docker = docker
        try:
            self._client = docker.from_env(version="auto", timeout=60)
        except docker.errors.DockerException as exc:
            raise self._unavailable(exc) from exc
        self._api = self._client.api

    @staticmethod
    def _unavailable(exc: Exception) -> DockerUnavailableError:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return DockerUnavailableError(
            f"cannot reach the Docker engine at {where}: {_describe(exc)}",
            hint="start the Docker daemon, or point DOCKER_HOST at a running engine",
        )

    def _call(self, fn: Callable[[], T]) -> T:
        import requests

        docker = self._docker
        try:
            return fn()
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            if isinstance(exc, docker.errors.APIError | docker.errors.NotFound):
                raise
            raise self._unavailable(exc) from exc

    # --- observe -------------------------------------------------------------------------
    def observe(self, project: str) -> Observed:
        flt = {"label": f"{LABEL_PROJECT}={project}"}
        raw = self._call(lambda: self._api.containers(all=True, filters=flt))
        containers = tuple(sorted((self._observed(c) for c in raw), key=lambda c: c.service))
        vols = self._call(lambda: self._api.volumes(filters=flt)).get("Volumes") or []
        volumes = tuple(
            sorted(
                (ObservedVolume(name=v["Name"], labels=v.get("Labels") or {}) for v in vols),
                key=lambda v: v.name,
            )
        )
        return Observed(containers=containers, volumes=volumes)

    @staticmethod
    def _observed(raw: Mapping[str, Any]) -> ObservedContainer:
        labels = raw.get("Labels") or {}
        ports = tuple(
            sorted({int(p["PublicPort"]) for p in raw.get("Ports") or [] if p.get("PublicPort")})
        )
        status = str(raw.get("Status", ""))
        exit_code = 0
        if raw.get("State") == "exited" and "(" in status:
            with contextlib.suppress(ValueError):
                exit_code = int(status.split("(", 1)[1].split(")", 1)[0])
        return ObservedContainer(
            id=raw["Id"],
            name=(raw.get("Names") or ["/?"])[0].lstrip("/"),
            service=labels.get(LABEL_SERVICE, ""),
            state=str(raw.get("State", "unknown")),
            config_hash=labels.get(LABEL_HASH, ""),
            image=str(raw.get("Image", "")),
            exit_code=exit_code,
            host_ports=ports,
            digest=_digest(labels),
        )

    def inspect_state(self, container_id: str) -> ObservedContainer | None:
        docker = self._docker
        try:
            raw = self._call(lambda: self._api.inspect_container(container_id))
        except docker.errors.NotFound:
            return None
        labels = raw["Config"].get("Labels") or {}
        state = raw["State"]
        return ObservedContainer(
            id=raw["Id"],
            name=raw["Name"].lstrip("/"),
            service=labels.get(LABEL_SERVICE, ""),
            state=str(state.get("Status", "unknown")),
            config_hash=labels.get(LABEL_HASH, ""),
            image=str(raw["Config"].get("Image", "")),
            exit_code=int(state.get("ExitCode") or 0),
            restart_count=int(raw.get("RestartCount") or 0),
            digest=_digest(labels),
        )

    # --- images --------------------------------------------------------------------------
    def image(self, ref: str) -> ImageInfo | None:
        docker = self._docker
        try:
            raw = self._call(lambda: self._api.inspect_image(ref))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code in (400, 404):
                return None
            raise ImageError(f"cannot inspect image {ref}: {_describe(exc)}") from exc
        cfg = raw.get("Config") or {}
        env = dict(item.split("=", 1) for item in cfg.get("Env") or [] if "=" in item)
        return ImageInfo(
            id=raw["Id"],
            tags=tuple(raw.get("RepoTags") or ()),
            labels=cfg.get("Labels") or {},
            env=env,
        )

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        progress: Progress,
    ) -> ImageInfo:
        docker = self._docker
        try:
            stream = self._call(
                lambda: self._api.build(
                    path=str(context),
                    tag=tag,
                    buildargs=dict(buildargs),
                    labels=dict(labels),
                    rm=True,
                    forcerm=True,
                    decode=True,
                    pull=False,
                )
            )
            last_lines: list[str] = []
            for chunk in stream:
                if "error" in chunk:
                    detail = " | ".join(last_lines[-3:])
                    raise ImageError(
                        f"building {tag} failed: {str(chunk['error']).strip()}"
                        + (f" (after: {detail})" if detail else ""),
                        hint=f"fix the recipe in {context}, then run `devenv images build`",
                    )
                line = str(chunk.get("stream", "")).strip()
                if line:
                    last_lines.append(line)
                    if line.startswith("Step "):
                        progress(f"  {tag}: {line}")
        except docker.errors.APIError as exc:
            raise ImageError(
                f"building {tag} failed: {_describe(exc)}",
                hint=f"check the recipe in {context}",
            ) from exc
        info = self.image(tag)
        if info is None:
            raise ImageError(f"building {tag} produced no image")
        return info

    def import_rootfs(
        self, tarball: Path, tag: str, *, labels: Mapping[str, str] | None = None
    ) -> ImageInfo:
        repo, _, version = tag.rpartition(":")
        changes = [f"LABEL {k}={v}" for k, v in sorted((labels or {}).items())] or None
        self._call(
            lambda: self._api.import_image_from_file(
                str(tarball), repository=repo, tag=version, changes=changes
            )
        )
        info = self.image(tag)
        if info is None:
            raise ImageError(f"importing {tag} produced no image")
        return info

    def layer_file(
        self, base: str, source: Path, dest: str, tag: str, *, labels: Mapping[str, str]
    ) -> ImageInfo:
        """One new layer holding `source` at `dest` on top of `base`: a single commit, which
        is several times faster than a Dockerfile build on the classic builder."""
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar, source.open("rb") as fh:
            info = tar.gettarinfo(str(source), arcname=dest.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755
            tar.addfile(info, fh)
        created = self._call(lambda: self._api.create_container(base, command=None))
        cid = created["Id"]
        try:
            self._call(lambda: self._api.put_archive(cid, "/", buf.getvalue()))
            repo, _, version = tag.rpartition(":")
            changes = [f"LABEL {k}={v}" for k, v in sorted(labels.items())]
            self._call(lambda: self._api.commit(cid, repository=repo, tag=version, changes=changes))
        finally:
            self.remove(cid)
        found = self.image(tag)
        if found is None:
            raise ImageError(f"committing {tag} produced no image")
        return found

    def tag(self, image: str, ref: str) -> None:
        repo, _, version = ref.rpartition(":")
        self._call(lambda: self._api.tag(image, repo, version, force=True))

    def list_images(self, repository: str) -> list[ImageInfo]:
        """Every image with a tag in `repository`, with its labels (env left empty)."""
        found: list[ImageInfo] = []
        for raw in self._call(lambda: self._api.images(name=repository)):
            tags = tuple(
                ref for ref in raw.get("RepoTags") or [] if ref.rpartition(":")[0] == repository
            )
            if tags:
                found.append(
                    ImageInfo(
                        id=str(raw["Id"]),
                        tags=tags,
                        labels=raw.get("Labels") or {},
                        env={},
                        created=int(raw.get("Created") or 0),
                    )
                )
        return found

    def images_in_use(self) -> set[str]:
        """Ids of the images any container on the engine was made from, running or not."""
        raw = self._call(lambda: self._api.containers(all=True))
        return {str(c["ImageID"]) for c in raw if c.get("ImageID")}

    def read_file(self, image: str, path: str) -> bytes | None:
        """One file of an image, read from a container that is created but never started."""
        import io
        import tarfile

        docker = self._docker
        created = self._call(lambda: self._api.create_container(image, command=["/bin/true"]))
        cid = created["Id"]
        try:
            stream, _ = self._call(lambda: self._api.get_archive(cid, path))
            buf = io.BytesIO(b"".join(stream))
        except docker.errors.NotFound:
            return None
        finally:
            self.remove(cid)
        with tarfile.open(fileobj=buf) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member is not None else None
            return extracted.read() if extracted is not None else None

    def untag(self, ref: str) -> bool:
        """Remove one tag; an image still used by a container stays (the engine refuses)."""
        docker = self._docker
        try:
            self._call(lambda: self._api.remove_image(ref))
        except docker.errors.APIError:
            return False
        return True

    # --- volumes -------------------------------------------------------------------------
    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self._call(lambda: self._api.create_volume(name=name, labels=dict(labels)))

    def remove_volume(self, name: str) -> None:
        docker = self._docker
        with contextlib.suppress(docker.errors.NotFound):
            self._call(lambda: self._api.remove_volume(name))

    # --- containers ----------------------------------------------------------------------
    def run(self, spec: ContainerSpec) -> str:
        container_id = self.create(spec)
        self.start(container_id, service=spec.service)
        return container_id

    def create(self, spec: ContainerSpec) -> str:
        docker = self._docker
        kwargs = to_run_kwargs(spec)
        try:
            container = self._call(lambda: self._client.containers.create(**kwargs))
        except docker.errors.APIError as exc:
            raise self._refused(spec.service, exc) from exc
        return str(container.id)

    def start(self, container_id: str, *, service: str = "") -> None:
        docker = self._docker
        try:
            self._call(lambda: self._api.start(container_id))
        except docker.errors.APIError as exc:
            raise self._refused(service or container_id[:12], exc) from exc

    @staticmethod
    def _refused(service: str, exc: Exception) -> DevenvError:
        text = _describe(exc)
        if "already allocated" in text or "address already in use" in text:
            return PortConflictError(
                f"service {service}: a host port is taken: {text}",
                hint="run `devenv up` again to pick a free port, or free the port",
            )
        return DevenvError(
            f"service {service}: the engine refused the container: {text}",
            hint=f"run `devenv status` and `devenv logs {service}`",
        )

    def stop(self, container_id: str, timeout: int = 10) -> None:
        docker = self._docker
        with contextlib.suppress(docker.errors.NotFound):
            self._call(lambda: self._api.stop(container_id, timeout=timeout))

    def remove(self, container_id: str) -> None:
        docker = self._docker
        with contextlib.suppress(docker.errors.NotFound):
            self._call(lambda: self._api.remove_container(container_id, force=True))

    def logs(self, container_id: str, tail: int = 20) -> str:
        docker = self._docker
        try:
            raw = self._call(lambda: self._api.logs(container_id, tail=tail))
        except docker.errors.NotFound:
            return ""
        return bytes(raw).decode("utf-8", "replace")

    def follow_logs(self, container_id: str) -> Iterator[str]:
        stream = self._call(lambda: self._api.logs(container_id, stream=True, follow=True, tail=50))
        for chunk in stream:
            yield bytes(chunk).decode("utf-8", "replace")

    def port_holder(self, host_port: int) -> str | None:
        for raw in self._call(self._api.containers):
            for p in raw.get("Ports") or []:
                if p.get("PublicPort") == host_port:
                    return str((raw.get("Names") or ["?"])[0].lstrip("/"))
        return None

    def raw_inspect(self, container_id: str) -> dict[str, Any]:
        """Full inspect document (tests read port bindings and security options from it)."""
        result: dict[str, Any] = json.loads(
            json.dumps(self._call(lambda: self._api.inspect_container(container_id)))
        )
        return result
