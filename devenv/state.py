"""The per-project state file (generated credentials, chosen ports) and the project lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devenv.errors import ConfigError, LockedError

STATE_VERSION = 1
_ALPHABET = string.ascii_letters + string.digits


@dataclass
class State:
    """Credentials generated on first `up` and the host ports devenv settled on."""

    path: Path
    credentials: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def credential(self, key: str, *, length: int = 24) -> str:
        value = self.credentials.get(key)
        if not value:
            # Letters and digits only: a value starting with "-" reads as an option when a
            # stand-in passes it on a command line (s3s-fs --secret-key).
            value = "".join(secrets.choice(_ALPHABET) for _ in range(length))
            self.credentials[key] = value
        return value

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(
                {"version": STATE_VERSION, "credentials": self.credentials, "ports": self.ports},
                fh,
                indent=2,
                sort_keys=True,
            )
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def state_dir(root: Path, project: str) -> Path:
    return root / ".devenv" / project


def load_state(root: Path, project: str) -> State:
    path = state_dir(root, project) / "state.json"
    if not path.exists():
        return State(path=path)
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
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return State(path=path, credentials=creds, ports=ports)


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
