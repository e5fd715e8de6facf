"""The Docker engine adapter: the only module that talks to the engine or imports the docker SDK.

Observing, creating, starting and removing containers go straight to the engine's HTTP API
over its socket (`_Engine`, standard library only); image builds, imports and layer commits use
the docker SDK, whose import (with requests) costs about 0.1 s that `status` and a no-op `up`
do not need. Every failure leaves this module as a DevenvError: EngineError (a refusal, an
error answer or a timeout), DockerUnavailableError (no engine at all), PortConflictError or
ImageError.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from devenv.errors import (
    DevenvError,
    DockerUnavailableError,
    EngineError,
    ImageError,
    Interrupted,
    PortConflictError,
)
from devenv.model import LOOPBACK
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
)

T = TypeVar("T")

DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 60.0  # seconds for one engine call (a stop waits up to its own timeout more)


def to_create_body(spec: ContainerSpec) -> dict[str, Any]:
    """Pure translation of a ContainerSpec into the engine's `POST /containers/create` body."""
    host: dict[str, Any] = {"Init": True, "Privileged": False}
    body: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in spec.environment],
        "Labels": dict(spec.labels),
        "HostConfig": host,
    }
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    if spec.user:
        body["User"] = spec.user
    if spec.network_mode:
        host["NetworkMode"] = spec.network_mode
    else:
        body["ExposedPorts"] = {f"{c}/tcp": {} for c, _ in spec.ports}
        host["PortBindings"] = {
            f"{c}/tcp": [{"HostIp": LOOPBACK, "HostPort": str(h)}] for c, h in spec.ports
        }
    if spec.mounts:
        host["Binds"] = [f"{volume}:{target}:rw" for volume, target in spec.mounts]
    return body


def split_ref(ref: str) -> tuple[str, str]:
    """`name:tag` -> (name, tag); `name@sha256:...` -> (that, ""); `name` -> (name, latest)."""
    if "@" in ref:
        return ref, ""
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, "latest"


def _digest(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    try:
        raw = json.loads(labels.get(LABEL_DIGEST) or "{}")
    except ValueError:
        return ()
    if not isinstance(raw, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def observed_container(raw: Mapping[str, Any]) -> ObservedContainer:
    """One entry of `GET /containers/json` as plain data."""
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
        id=str(raw["Id"]),
        name=str((raw.get("Names") or ["/?"])[0]).lstrip("/"),
        service=str(labels.get(LABEL_SERVICE, "")),
        state=str(raw.get("State", "unknown")),
        config_hash=str(labels.get(LABEL_HASH, "")),
        image=str(raw.get("Image", "")),
        exit_code=exit_code,
        host_ports=ports,
        digest=_digest(labels),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        created=float(raw.get("Created") or 0),
    )


def demultiplex(raw: bytes) -> str:
    """A non-TTY container's log stream: 8-byte frame headers (stream, size) before each chunk."""
    out: list[bytes] = []
    at = 0
    while at + 8 <= len(raw) and raw[at] in (0, 1, 2) and raw[at + 1 : at + 4] == b"\0\0\0":
        (size,) = struct.unpack(">I", raw[at + 4 : at + 8])
        out.append(raw[at + 8 : at + 8 + size])
        at += 8 + size
    if at < len(raw):  # a TTY container's plain stream, or a torn last frame
        out.append(raw[at:])
    return b"".join(out).decode("utf-8", "replace")


# --- the engine's HTTP API over its socket -------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def message(self) -> str:
        with contextlib.suppress(ValueError, AttributeError):
            found = json.loads(self.body).get("message")
            if found:
                return str(found).splitlines()[0]
        text = self.body.decode("utf-8", "replace").strip()
        return text.splitlines()[0] if text else f"HTTP {self.status}"


@dataclass(frozen=True)
class _Upload:
    """A request body streamed in chunks, of a known length."""

    chunks: Iterable[bytes]
    length: int
    content_type: str


def file_tar(source: Path, name: str, *, mode: int = 0o755) -> tuple[Iterator[bytes], int]:
    """A one-file tar archive (owned by root) streamed from `source`, and its length: the
    file is read in chunks, never held whole in memory."""
    import tarfile
    import time

    size = source.stat().st_size
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(time.time())
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    padding = -size % tarfile.BLOCKSIZE
    trailer = b"\0" * (padding + 2 * tarfile.BLOCKSIZE)

    def chunks() -> Iterator[bytes]:
        yield header
        with source.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield block
        yield trailer

    return chunks(), len(header) + size + len(trailer)


class _Engine:
    """Unversioned calls to the engine API (the engine answers in its own current version).

    A fresh connection per call: calls come from several threads, and a unix-socket connect
    costs microseconds.
    """

    def __init__(self, host: str, timeout: float = TIMEOUT) -> None:
        self.host = host
        self.timeout = timeout
        parts = urlsplit(host)
        self._connect: Callable[[float], http.client.HTTPConnection]
        if parts.scheme == "unix":
            path = parts.path or "/var/run/docker.sock"
            self._connect = lambda t: _UnixConnection(path, t)
        elif parts.scheme in ("tcp", "http", "https"):
            hostname, port = parts.hostname or LOOPBACK, parts.port or 2375
            tls = parts.scheme == "https" or bool(os.environ.get("DOCKER_TLS_VERIFY"))
            if tls:
                context = _tls_context()
                self._connect = lambda t: http.client.HTTPSConnection(
                    hostname, port, timeout=t, context=context
                )
            else:
                self._connect = lambda t: http.client.HTTPConnection(hostname, port, timeout=t)
        else:
            raise DockerUnavailableError(
                f"DOCKER_HOST={host}: devenv speaks to engines over unix:// or tcp:// only",
                hint="point DOCKER_HOST at the engine's socket or TCP address",
            )

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: object = None,
        timeout: float | None = None,
        upload: _Upload | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        conn, response = self._open(
            method, path, query=query, body=body, timeout=timeout, upload=upload, headers=headers
        )
        try:
            data = response.read()
        except OSError as exc:
            raise self._failed(method, path, exc) from exc
        finally:
            conn.close()
        return _Answer(response.status, data)

    def stream(self, path: str, *, query: Mapping[str, object]) -> Iterator[bytes]:
        """The raw bytes of a streaming answer (followed logs) until the engine ends it."""
        conn, response = self._open("GET", path, query=query, body=None, timeout=None)
        try:
            if response.status != 200:
                raise EngineError(
                    f"GET {path}: {_Answer(response.status, response.read()).message}"
                )
            while True:
                chunk = response.read1(65536)
                if not chunk:
                    return
                yield chunk
        finally:
            conn.close()

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None,
        body: object,
        timeout: float | None,
        upload: _Upload | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        url = path + (f"?{urlencode(query)}" if query else "")
        sent = {"Host": "docker", **(headers or {})}
        payload: bytes | Iterable[bytes] | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        elif upload is not None:
            payload = upload.chunks
            sent["Content-Type"] = upload.content_type
            sent["Content-Length"] = str(upload.length)
        conn = self._connect(self.timeout if timeout is None else timeout)
        try:
            conn.request(method, url, body=payload, headers=sent)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._failed(method, path, exc) from exc

    def _failed(self, method: str, path: str, exc: Exception) -> EngineError:
        if isinstance(exc, TimeoutError):
            return EngineError(
                f"the Docker engine at {self.host} did not answer {method} {path} within "
                f"{self.timeout:.0f} s",
                hint="the engine is overloaded or stuck: check `docker info`, then run again",
            )
        if isinstance(exc, OSError):  # refused, no socket, no permission, reset
            return unavailable(self.host, exc.strerror or str(exc) or type(exc).__name__)
        return EngineError(f"the Docker engine at {self.host} broke off {method} {path}: {exc}")


def _tls_context() -> Any:
    import ssl

    certs = Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    return context


def unavailable(host: str, why: str) -> DockerUnavailableError:
    return DockerUnavailableError(
        f"cannot reach the Docker engine at {host}: {why}",
        hint="start the Docker daemon, or point DOCKER_HOST at a running engine",
    )


def _refused(service: str, message: str) -> DevenvError:
    if "already allocated" in message or "address already in use" in message:
        return PortConflictError(
            f"service {service}: a host port is taken: {message}",
            hint="run `devenv up` again to pick a free port, or free the port",
        )
    return EngineError(
        f"service {service}: the engine refused the container: {message}",
        hint=f"run `devenv status` and `devenv logs {service}`",
    )


class DockerRuntime:
    """Runtime backed by the Docker engine found from the environment (DOCKER_HOST or socket)."""

    def __init__(self) -> None:
        self.host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._engine = _Engine(self.host)
        self._sdk_client: Any = None
        self._auth_config: Any = None

    # --- observe -------------------------------------------------------------------------
    def observe(self, project: str) -> Observed:
        everything = self._engine.call("GET", "/containers/json", query={"all": "1"})
        self._expect(everything, "list containers")
        containers: list[ObservedContainer] = []
        published: dict[int, str] = {}
        for raw in everything.json() or []:
            found = observed_container(raw)
            for port in found.host_ports:
                published.setdefault(port, found.name)
            if (raw.get("Labels") or {}).get(LABEL_PROJECT) == project:
                containers.append(found)
        flt = json.dumps({"label": [f"{LABEL_PROJECT}={project}"]})
        vols = self._engine.call("GET", "/volumes", query={"filters": flt})
        self._expect(vols, "list volumes")
        volumes = [
            ObservedVolume(name=str(v["Name"]), labels=v.get("Labels") or {})
            for v in (vols.json() or {}).get("Volumes") or []
        ]
        return Observed(
            containers=tuple(sorted(containers, key=lambda c: c.service)),
            volumes=tuple(sorted(volumes, key=lambda v: v.name)),
            published=published,
        )

    def observe_all(self) -> Observed:
        flt = json.dumps({"label": [LABEL_PROJECT]})
        found = self._engine.call("GET", "/containers/json", query={"all": "1", "filters": flt})
        self._expect(found, "list containers")
        vols = self._engine.call("GET", "/volumes", query={"filters": flt})
        self._expect(vols, "list volumes")
        return Observed(
            containers=tuple(observed_container(raw) for raw in found.json() or []),
            volumes=tuple(
                ObservedVolume(name=str(v["Name"]), labels=v.get("Labels") or {})
                for v in (vols.json() or {}).get("Volumes") or []
            ),
        )

    def inspect_state(self, container_id: str) -> ObservedContainer | None:
        answer = self._engine.call("GET", f"/containers/{quote(container_id)}/json")
        if answer.status == 404:
            return None
        self._expect(answer, f"inspect container {container_id[:12]}")
        raw = answer.json()
        labels = raw["Config"].get("Labels") or {}
        state = raw["State"]
        return ObservedContainer(
            id=str(raw["Id"]),
            name=str(raw["Name"]).lstrip("/"),
            service=str(labels.get(LABEL_SERVICE, "")),
            state=str(state.get("Status", "unknown")),
            config_hash=str(labels.get(LABEL_HASH, "")),
            image=str(raw["Config"].get("Image", "")),
            exit_code=int(state.get("ExitCode") or 0),
            restart_count=int(raw.get("RestartCount") or 0),
            digest=_digest(labels),
        )

    # --- images --------------------------------------------------------------------------
    def image(self, ref: str) -> ImageInfo | None:
        answer = self._engine.call("GET", f"/images/{quote(ref, safe='')}/json")
        if answer.status in (400, 404):
            return None
        if answer.status != 200:
            raise ImageError(f"cannot inspect image {ref}: {answer.message}")
        raw = answer.json()
        cfg = raw.get("Config") or {}
        env = dict(item.split("=", 1) for item in cfg.get("Env") or [] if "=" in item)
        return ImageInfo(
            id=str(raw["Id"]),
            tags=tuple(raw.get("RepoTags") or ()),
            labels=cfg.get("Labels") or {},
            env=env,
            digests=tuple(raw.get("RepoDigests") or ()),
        )

    # --- registries ----------------------------------------------------------------------
    def lookup(self, ref: str, *, timeout: float) -> RegistryAnswer:
        """What the image's registry says of `ref`, asked through the engine (so through its
        mirrors and proxy, with the Docker CLI's stored credentials): only its digest."""
        try:
            answer = self._engine.call(
                "GET",
                f"/distribution/{quote(ref, safe='/:@')}/json",
                timeout=timeout,
                headers=self._registry_auth(ref),
            )
        except EngineError as exc:
            return RegistryAnswer(ref, None, exc.message, None)
        if answer.status == 200:
            with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
                return RegistryAnswer(ref, str(answer.json()["Descriptor"]["digest"]), "", 200)
        return RegistryAnswer(ref, None, answer.message, answer.status)

    def pull(
        self,
        ref: str,
        *,
        events: Callable[[Mapping[str, object]], None],
        stop: Callable[[], bool],
        idle: float,
    ) -> ImageInfo:
        """`POST /images/create`, its progress events passed on as they come. Given up after
        `idle` seconds without a word from the engine, or as soon as `stop()` says so."""
        name, tag = split_ref(ref)
        query = {"fromImage": name} | ({"tag": tag} if tag else {})
        conn, response = self._engine._open(
            "POST", "/images/create", query=query, body=None, timeout=idle,
            headers=self._registry_auth(ref),
        )  # fmt: skip
        finished = threading.Event()

        def watch() -> None:  # a stop (Ctrl-C) ends the pull at once, even a silent one
            while not finished.wait(0.2):
                if stop():
                    with contextlib.suppress(OSError):
                        if conn.sock is not None:
                            conn.sock.shutdown(socket.SHUT_RDWR)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            if response.status != 200:
                raise ImageError(
                    f"pulling {ref} failed: {_Answer(response.status, response.read()).message}",
                    hint="`devenv up --pull never` builds the local stand-ins instead",
                )
            for raw in response:
                line = raw.strip()
                if not line:
                    continue
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        if event.get("error"):
                            raise ImageError(
                                f"pulling {ref} failed: {str(event['error']).strip()}",
                                hint="run `devenv up` again (or `devenv up --pull never`: the "
                                "local stand-ins instead)",
                            )
                        events(event)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            if stop():
                raise Interrupted(f"pulling {ref} was interrupted") from exc
            raise ImageError(
                f"pulling {ref}: the engine said nothing for {idle:.0f} s ({_first_line(exc)})",
                hint="check the network to the registry, then run `devenv up` again (or "
                "`devenv up --pull never`: the local stand-ins instead)",
            ) from exc
        finally:
            finished.set()
            conn.close()
        if stop():
            raise Interrupted(f"pulling {ref} was interrupted")
        return self._present(ref, "pulling")

    def _registry_auth(self, ref: str) -> dict[str, str]:
        """X-Registry-Auth from what the Docker CLI stores (config.json, credential helpers),
        read as docker-py reads it; nothing when there is none (anonymous pulls)."""
        import docker
        from docker import auth
        from docker.credentials.errors import StoreError

        try:
            registry, _ = auth.resolve_repository_name(ref)
            if self._auth_config is None:
                self._auth_config = auth.load_config()
            found = auth.resolve_authconfig(self._auth_config, registry)
        except (docker.errors.DockerException, StoreError, OSError, ValueError):
            return {}
        return {"X-Registry-Auth": auth.encode_header(found)} if found else {}

    def list_images(self, repository: str) -> list[ImageInfo]:
        """Every image with a tag in `repository`, with its labels (env left empty)."""
        flt = json.dumps({"reference": [repository]})
        answer = self._engine.call("GET", "/images/json", query={"filters": flt})
        self._expect(answer, f"list images of {repository}")
        found: list[ImageInfo] = []
        for raw in answer.json() or []:
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
        answer = self._engine.call("GET", "/containers/json", query={"all": "1"})
        self._expect(answer, "list containers")
        return {str(c["ImageID"]) for c in answer.json() or [] if c.get("ImageID")}

    def tag(self, image: str, ref: str) -> None:
        repo, _, version = ref.rpartition(":")
        answer = self._engine.call(
            "POST", f"/images/{quote(image, safe='')}/tag", query={"repo": repo, "tag": version}
        )
        self._expect(answer, f"tag {image} as {ref}")

    def untag(self, ref: str) -> bool:
        """Remove one tag; an image still used by a container stays (the engine refuses)."""
        answer = self._engine.call("DELETE", f"/images/{quote(ref, safe='')}")
        return answer.status == 200

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        progress: Progress,
    ) -> ImageInfo:
        api = self._sdk()

        def build() -> None:
            stream = api.build(
                path=str(context),
                tag=tag,
                buildargs=dict(buildargs),
                labels=dict(labels),
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
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

        self._sdk_call(f"building {tag}", build)
        return self._present(tag, "building")

    def import_rootfs(
        self, tarball: Path, tag: str, *, labels: Mapping[str, str] | None = None
    ) -> ImageInfo:
        repo, _, version = tag.rpartition(":")
        changes = [f"LABEL {k}={v}" for k, v in sorted((labels or {}).items())] or None
        api = self._sdk()
        self._sdk_call(
            f"importing {tag}",
            lambda: api.import_image_from_file(
                str(tarball), repository=repo, tag=version, changes=changes
            ),
        )
        return self._present(tag, "importing")

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
        api = self._sdk()
        created = self._sdk_call(
            f"packaging {tag}", lambda: api.create_container(base, command=None)
        )
        cid = str(created["Id"])
        try:
            repo, _, version = tag.rpartition(":")
            changes = [f"LABEL {k}={v}" for k, v in sorted(labels.items())]
            self._sdk_call(f"packaging {tag}", lambda: api.put_archive(cid, "/", buf.getvalue()))
            self._sdk_call(
                f"packaging {tag}",
                lambda: api.commit(cid, repository=repo, tag=version, changes=changes),
            )
        finally:
            self.remove(cid)
        return self._present(tag, "committing")

    def read_file(self, image: str, path: str) -> bytes | None:
        """One file of an image, read from a container that is created but never started."""
        import io
        import tarfile

        api = self._sdk()
        created = self._sdk_call(
            f"reading {path} of {image}",
            lambda: api.create_container(image, command=["/bin/true"]),
        )
        cid = str(created["Id"])
        try:
            archive = self._sdk_call(
                f"reading {path} of {image}", lambda: api.get_archive(cid, path), missing=True
            )
            if archive is None:
                return None
            buf = io.BytesIO(b"".join(archive[0]))
        finally:
            self.remove(cid)
        with tarfile.open(fileobj=buf) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member is not None else None
            return extracted.read() if extracted is not None else None

    def _present(self, tag: str, doing: str) -> ImageInfo:
        info = self.image(tag)
        if info is None:
            raise ImageError(f"{doing} {tag} produced no image")
        return info

    # --- volumes -------------------------------------------------------------------------
    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        answer = self._engine.call(
            "POST", "/volumes/create", body={"Name": name, "Labels": dict(labels)}
        )
        self._expect(answer, f"create volume {name}")

    def remove_volume(self, name: str) -> None:
        answer = self._engine.call("DELETE", f"/volumes/{quote(name, safe='')}")
        if answer.status == 409:
            raise EngineError(
                f"volume {name} is in use: {answer.message}",
                hint="stop whatever still uses it (`docker ps -a --filter volume="
                f"{name}`), then run `devenv down --volumes` again",
            )
        if answer.status != 404:
            self._expect(answer, f"remove volume {name}")

    # --- containers ----------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        answer = self._engine.call(
            "POST", "/containers/create", query={"name": spec.name}, body=to_create_body(spec)
        )
        if answer.status != 201:
            raise _refused(spec.service, answer.message)
        return str(answer.json()["Id"])

    def start(self, container_id: str, *, service: str = "") -> None:
        answer = self._engine.call("POST", f"/containers/{quote(container_id)}/start")
        if answer.status not in (204, 304):
            raise _refused(service or container_id[:12], answer.message)

    def stop(self, container_id: str, timeout: int = 10) -> None:
        answer = self._engine.call(
            "POST",
            f"/containers/{quote(container_id)}/stop",
            query={"t": str(timeout)},
            timeout=TIMEOUT + timeout,
        )
        if answer.status not in (204, 304, 404):
            self._expect(answer, f"stop container {container_id[:12]}")

    def put_file(self, container_id: str, source: Path, dest: str) -> None:
        """Copy a host file into a container (running or not) with the engine's archive
        upload: `dest` is replaced, mode 0755, owned by root. A running executable can be
        replaced: the engine unlinks it and writes a new file, and the running process keeps
        the old one until it exits."""
        directory, _, name = dest.rpartition("/")
        chunks, length = file_tar(source, name)
        answer = self._engine.call(
            "PUT",
            f"/containers/{quote(container_id)}/archive",
            query={"path": directory or "/"},
            upload=_Upload(chunks, length, "application/x-tar"),
        )
        if answer.status == 404:
            raise EngineError(
                f"container {container_id[:12]} is gone: {answer.message}",
                hint="run `devenv up`",
            )
        self._expect(answer, f"copy {source.name} into container {container_id[:12]}")

    def remove(self, container_id: str) -> None:
        answer = self._engine.call(
            "DELETE", f"/containers/{quote(container_id)}", query={"force": "1"}
        )
        if answer.status not in (204, 404):
            self._expect(answer, f"remove container {container_id[:12]}")

    def logs(self, container_id: str, tail: int = 20) -> str:
        answer = self._engine.call(
            "GET",
            f"/containers/{quote(container_id)}/logs",
            query={"stdout": "1", "stderr": "1", "tail": str(tail)},
        )
        if answer.status == 404:
            return ""
        self._expect(answer, f"read the logs of {container_id[:12]}")
        return demultiplex(answer.body)

    def follow_logs(self, container_id: str) -> Iterator[str]:
        pending = b""
        query = {"stdout": "1", "stderr": "1", "follow": "1", "tail": "50"}
        for chunk in self._engine.stream(f"/containers/{quote(container_id)}/logs", query=query):
            pending += chunk
            while len(pending) >= 8 and pending[0] in (0, 1, 2):
                (size,) = struct.unpack(">I", pending[4:8])
                if len(pending) < 8 + size:
                    break
                yield pending[8 : 8 + size].decode("utf-8", "replace")
                pending = pending[8 + size :]
            if pending and pending[0] not in (0, 1, 2):  # a TTY container: no frames
                yield pending.decode("utf-8", "replace")
                pending = b""

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _expect(answer: _Answer, what: str) -> None:
        if not 200 <= answer.status < 300:
            raise EngineError(f"the engine refused to {what}: {answer.message}")

    def _sdk(self) -> Any:
        """The docker SDK's low-level client, made on first use (builds only)."""
        if self._sdk_client is None:
            import docker

            try:
                self._sdk_client = docker.APIClient(
                    **docker.utils.kwargs_from_env(), version="auto", timeout=int(TIMEOUT)
                )
            except docker.errors.DockerException as exc:
                raise unavailable(self.host, _first_line(exc)) from exc
        return self._sdk_client

    def _sdk_call(self, what: str, fn: Callable[[], T], *, missing: bool = False) -> T | Any:
        """Run one SDK call; its exceptions leave as devenv errors (None for a 404 if
        `missing`)."""
        import docker
        import requests

        try:
            return fn()
        except docker.errors.NotFound as exc:
            if missing:
                return None
            raise EngineError(f"{what}: {_first_line(exc)}") from exc
        except docker.errors.APIError as exc:
            raise ImageError(f"{what} failed: {_first_line(exc)}") from exc
        except requests.exceptions.Timeout as exc:
            raise EngineError(
                f"{what}: the Docker engine did not answer within {TIMEOUT:.0f} s",
                hint="the engine is overloaded or stuck: check `docker info`, then run again",
            ) from exc
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise unavailable(self.host, _first_line(exc)) from exc


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
