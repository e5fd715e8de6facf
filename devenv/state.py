"""The per-project state file (generated credentials, chosen ports) and the project lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import string
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devenv.errors import ConfigError, LockedError
from devenv.filelock import exclusive

STATE_VERSION = 1
_ALPHABET = string.ascii_letters + string.digits


# The credentials devenv generates on a project's first `up`: name -> length.
CREDENTIALS: dict[str, int] = {
    "postgres_password": 24,
    "storage_access_key": 12,
    "storage_secret_key": 32,
}


@dataclass(frozen=True)
class StateFile:
    """The state file as read: generated credentials and the host ports devenv settled on."""

    path: Path
    credentials: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    exists: bool = False
    private: bool = True  # mode 0600 (a laxer mode is tightened by the next `up`)


def new_secret(length: int) -> str:
    # Letters and digits only: safe in any URL, environment file or shell, unquoted.
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def save_state(path: Path, credentials: Mapping[str, str], ports: Mapping[str, int]) -> None:
    """Write the state file atomically, mode 0600 in a 0700 directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(
            {"version": STATE_VERSION, "credentials": dict(credentials), "ports": dict(ports)},
            fh,
            indent=2,
            sort_keys=True,
        )
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def state_dir(root: Path, project: str) -> Path:
    return root / ".devenv" / project


def load_state(root: Path, project: str) -> StateFile:
    """Read the state file (nothing is written, not even its mode)."""
    path = state_dir(root, project) / "state.json"
    if not path.exists():
        return StateFile(path=path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        creds = {str(k): str(v) for k, v in dict(raw.get("credentials", {})).items()}
        ports = {str(k): int(v) for k, v in dict(raw.get("ports", {})).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"state file is unreadable ({exc})",
            file=str(path),
            hint="it holds generated credentials: restore it from a backup, or remove it "
            "together with the project's volumes (`devenv down --volumes`)",
        ) from exc
    private = not path.stat().st_mode & 0o077
    return StateFile(path=path, credentials=creds, ports=ports, exists=True, private=private)


@contextlib.contextmanager
def project_lock(
    root: Path, project: str, *, wait: float = 120.0, notify: object = None
) -> Iterator[None]:
    """Hold the project's exclusive lock; a second devenv waits for it, then gives up clearly.

    The lock is an flock, so the kernel releases it when the holder dies (SIGINT, SIGKILL).
    """
    directory = state_dir(root, project)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        announced = False
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"another devenv is working on project {project} "
                        f"(lock {path} held for over {wait:.0f} s)",
                        hint="wait for it to finish, or stop it; the lock frees itself "
                        "when that process exits",
                    ) from None
                if not announced and callable(notify):
                    notify(f"waiting for another devenv working on project {project} ...")
                    announced = True
                time.sleep(delay)  # polling a lock we do not own: no event to wait on
                delay = min(delay * 2, 0.25)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


CLAIM_TTL = 7 * 24 * 3600.0


def cache_dir() -> Path:
    """Machine-wide cache outside any checkout (cargo target dirs, the S3 stand-in, port claims)."""
    root = os.environ.get("DEVENV_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "devenv"
    )
    return Path(root)


@dataclass(frozen=True)
class PortClaims:
    """Host ports each devenv project on this machine has settled on, as read.

    Two `up`s of different projects would otherwise both see a port free (the host-network
    backend binds only once it has migrated) and race for it; claims make them choose apart.
    """

    project: str
    data: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def others(self, now: float | None = None) -> set[int]:
        now = time.time() if now is None else now
        taken: set[int] = set()
        for name, entry in self.data.items():
            if name == self.project:
                continue
            at = entry.get("at")
            if isinstance(at, int | float) and now - at > CLAIM_TTL:
                continue
            ports = entry.get("ports")
            if isinstance(ports, list):
                taken.update(int(p) for p in ports if isinstance(p, int))
        return taken

    def mine(self) -> tuple[tuple[int, ...], float | None]:
        """This project's claimed ports and when it claimed them."""
        entry = self.data.get(self.project) or {}
        ports = entry.get("ports")
        at = entry.get("at")
        return (
            tuple(int(p) for p in ports if isinstance(p, int)) if isinstance(ports, list) else (),
            float(at) if isinstance(at, int | float) else None,
        )


def read_claims(name: str) -> dict[str, dict[str, object]]:
    """One machine-wide claims file as read, without its lock: it is replaced atomically."""
    path = cache_dir() / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or torn: a torn file only loses advice (ports to avoid, images to keep)
    return (
        {str(k): dict(v) for k, v in raw.items() if isinstance(v, dict)}
        if isinstance(raw, dict)
        else {}
    )


@contextlib.contextmanager
def _machine_file(name: str) -> Iterator[dict[str, dict[str, object]]]:
    """Read-modify-write one machine-wide JSON file of the cache dir under an exclusive lock."""
    directory = cache_dir()
    path = directory / f"{name}.json"
    with exclusive(directory / f"{name}.lock"):
        try:
            raw = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            raw = {}  # a torn file only loses advice (ports to avoid, images to keep)
        data = {str(k): dict(v) for k, v in raw.items() if isinstance(v, dict)}
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


def read_port_claims(project: str) -> PortClaims:
    return PortClaims(project, read_claims("port-claims"))


def claim_ports(project: str, ports: Iterable[int]) -> set[int]:
    """Record this project's ports machine-wide; returns those another project claimed in the
    meantime (nothing is recorded then: the caller's choice is stale)."""
    wanted = sorted(set(ports))
    with _machine_file("port-claims") as data:
        taken = PortClaims(project, data).others() & set(wanted)
        if not taken:
            data[project] = {"ports": wanted, "at": time.time()}
    return taken


def release_ports(project: str) -> None:
    with _machine_file("port-claims") as data:
        data.pop(project, None)


class ImageClaims:
    """The backend image each devenv project on this machine runs (or will run next `up`).

    State files live in each checkout, so a build in one checkout cannot see which images
    another checkout's projects use; this machine-wide record is what pruning consults.
    """

    def __init__(self, project: str, data: dict[str, dict[str, object]]) -> None:
        self.project = project
        self.data = data

    def claim(self, ref: str, *, image_id: str = "", source: str = "") -> None:
        entry: dict[str, object] = {"image": ref, "id": image_id, "source": source}
        self.data[self.project] = entry | {"at": time.time()}

    def release(self) -> None:
        self.data.pop(self.project, None)

    def names(self) -> set[str]:
        """Every image reference and id any project claims (this one included)."""
        found: set[str] = set()
        for entry in self.data.values():
            for key in ("image", "id"):
                value = entry.get(key)
                if isinstance(value, str) and value:
                    found.add(value)
        return found


@contextlib.contextmanager
def image_claims(project: str = "") -> Iterator[ImageClaims]:
    """Read-modify-write the machine's backend image claims under an exclusive lock."""
    with _machine_file("image-claims") as data:
        yield ImageClaims(project, data)


def claimed_image(project: str) -> str | None:
    """The backend image this project last claimed, as read (no lock, nothing written)."""
    image = (read_claims("image-claims").get(project) or {}).get("image")
    return image if isinstance(image, str) and image else None


# --- what `devenv watch` put into the running backend container ------------------------------

SERVING_FILE = "serving.json"


@dataclass(frozen=True)
class Serving:
    """The backend container (by id) into which `devenv watch` copied a binary, the source
    fingerprint (the backend image identity) that binary was built from, and the cargo profile.

    Keyed by container id, the record cannot outlive its container: a recreated container has
    another id and the record no longer applies to it."""

    container: str
    identity: str
    profile: str = "release"


def read_serving(root: Path, project: str) -> Serving | None:
    """The record as read; None when there is none or it cannot be read (then nothing is
    served by watch as far as `up` knows, and it rebuilds what the checkout says)."""
    path = state_dir(root, project) / SERVING_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Serving(str(raw["container"]), str(raw["identity"]), str(raw.get("profile", "")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_serving(root: Path, project: str, serving: Serving) -> None:
    write_json_atomic(
        state_dir(root, project) / SERVING_FILE,
        {"container": serving.container, "identity": serving.identity, "profile": serving.profile},
    )


def clear_serving(root: Path, project: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir(root, project) / SERVING_FILE).unlink()


def write_json_atomic(path: Path, data: Mapping[str, object]) -> None:
    """Replace `path` with `data` as JSON in one rename (mode 0600): a reader sees the old file
    or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
    os.replace(tmp, path)
