"""Pure facts about registries: where a reference is pulled from, what a failed lookup means,
how a pull's progress reads, and which identity an image has before and after its pull."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from devenv.runtime.base import ImageInfo, RegistryAnswer

DOCKER_HUB = "docker.io"
# Why a registry could not serve a reference: `unreachable` (no network, no such host, a
# timeout: every reference on that registry fails alike, so it is asked once per run),
# `missing` (no such repository or tag), `denied` (credentials), `error` (anything else).
Verdict = Literal["ok", "unreachable", "missing", "denied", "error"]

_UNREACHABLE = (
    "no such host", "connection refused", "network is unreachable", "i/o timeout",
    "tls handshake timeout", "timeout exceeded", "connection reset", "no route to host",
    "server misbehaving", "temporary failure in name resolution", "context deadline exceeded",
    "dial tcp",
)  # fmt: skip
_MISSING = ("manifest unknown", "not found", "does not exist", "name unknown")
_DENIED = ("unauthorized", "denied", "authentication required", "incorrect username")


def registry_of(ref: str) -> str:
    """The registry a reference is pulled from: its first path part when that names a host
    (a dot, a port or `localhost`), else Docker Hub."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def repository_of(ref: str) -> str:
    """`postgres:15` -> `postgres`; `host:5000/a/b:1` -> `host:5000/a/b`; digests dropped."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def verdict(answer: RegistryAnswer) -> Verdict:
    if answer.digest:
        return "ok"
    text = answer.error.lower()
    if answer.status is None or any(word in text for word in _UNREACHABLE):
        return "unreachable"
    if answer.status in (401, 403) or any(word in text for word in _DENIED):
        return "denied"
    if answer.status == 404 or any(word in text for word in _MISSING):
        return "missing"
    return "error"


def short_error(answer: RegistryAnswer, limit: int = 120) -> str:
    """The engine's words, without the request it made: `lookup registry-1.docker.io on
    10.0.0.53:53: no such host` instead of `Get "https://...": dial tcp: lookup ...`."""
    text = answer.error.strip() or "no answer"
    text = re.sub(r'^(Get|Head|Post) "[^"]*":\s*', "", text)
    text = re.sub(r"^dial tcp( [^:]+:\d+)?:\s*", "", text)
    head, sep, tail = text.partition(": ")
    if sep and head == tail:  # the registry's "manifest unknown: manifest unknown"
        text = head
    return text if len(text) <= limit else text[: limit - 1] + "…"


def why_not(answer: RegistryAnswer) -> str:
    """One phrase: why the registry cannot serve this reference now."""
    kind = verdict(answer)
    where = registry_of(answer.ref)
    if kind == "unreachable":
        return f"registry {where} unreachable ({short_error(answer)})"
    if kind == "missing":
        return f"{answer.ref} is not in registry {where} ({short_error(answer)})"
    if kind == "denied":
        return f"registry {where} refused the credentials ({short_error(answer)}; `docker login`)"
    return f"registry {where} failed ({short_error(answer)})"


def image_identity(info: ImageInfo, ref: str) -> str:
    """What a compose image is, stably across its pull: the digest the registry gave it
    (`RepoDigests`) when it was pulled, else its image id (built or loaded here)."""
    repository = repository_of(ref)
    names = {repository, f"{DOCKER_HUB}/{repository}", f"{DOCKER_HUB}/library/{repository}"}
    for entry in info.digests:
        name, _, digest = entry.partition("@")
        if name in names and digest:
            return digest
    return info.id


def pulled_identity(answer: RegistryAnswer) -> str:
    """The identity the image will have once pulled (the `image_identity` of the result)."""
    return answer.digest or answer.ref


_MAJOR_TAG = re.compile(r"(\d+)(?:[.\-_]|$)")


def pg_major_from_tag(ref: str) -> str | None:
    """`postgres:15.10-bookworm` -> 15: the official image's tags start with the major
    version (`16`, `16.4`, `16-alpine`); None when the tag does not say (`latest`)."""
    last = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    found = _MAJOR_TAG.match(last.rsplit(":", 1)[1])
    return found.group(1) if found else None


# --- a pull's progress ----------------------------------------------------------------------

_DOWNLOADED = ("Download complete", "Verifying Checksum", "Extracting", "Pull complete")


@dataclass
class PullProgress:
    """The engine's pull events folded into layers and bytes (`events` of `Runtime.pull`)."""

    layers: dict[str, str] = field(default_factory=dict)  # layer id -> its last status
    totals: dict[str, int] = field(default_factory=dict)  # layer id -> bytes to download
    current: dict[str, int] = field(default_factory=dict)  # layer id -> bytes downloaded
    error: str = ""

    def feed(self, event: Mapping[str, object]) -> None:
        if event.get("error"):
            self.error = str(event["error"]).strip()
            return
        layer = event.get("id")
        status = str(event.get("status") or "")
        if not isinstance(layer, str) or not status or status.startswith("Pulling from"):
            return
        self.layers[layer] = status
        detail = event.get("progressDetail")
        if status == "Downloading" and isinstance(detail, Mapping):
            total, now = detail.get("total"), detail.get("current")
            if isinstance(total, int) and total > 0:
                self.totals[layer] = total
            if isinstance(now, int):
                self.current[layer] = now
        elif status in _DOWNLOADED and layer in self.totals:
            self.current[layer] = self.totals[layer]

    @property
    def done(self) -> int:
        return sum(1 for s in self.layers.values() if s in ("Pull complete", "Already exists"))

    @property
    def downloaded(self) -> int:
        return sum(self.current.values())

    @property
    def fetched(self) -> int:
        """Layers this pull brought (not the ones the engine already had)."""
        return sum(1 for s in self.layers.values() if s not in ("Already exists", "Waiting"))

    def line(self) -> str:
        """`3/7 layers, 45.1/148.2 MB`; the size once the engine has said it."""
        text = f"{self.done}/{len(self.layers)} layers"
        if self.totals:
            text += f", {megabytes(self.downloaded)}/{megabytes(sum(self.totals.values()))} MB"
        return text


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}"


def pulled_line(service: str, ref: str, progress: PullProgress, seconds: float) -> str:
    """`postgres  pulled postgres:15.10-bookworm (148.2 MB, 12.3 s)`; the layers when the
    engine already had some."""
    size = f"{megabytes(progress.downloaded)} MB"
    known = len(progress.layers)
    if progress.fetched < known:
        size += f" in {progress.fetched} of {known} layers"
    return f"{service}  pulled {ref} ({size}, {seconds:.1f} s)"
