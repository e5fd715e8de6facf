"""The snapshot store on disk: manifests and content-addressed objects, per project, 0700/0600.

It lives under the machine cache (outside every checkout), so a snapshot is never committed,
and its directories and files are readable by their owner only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from devenv.errors import RefusedError
from devenv.filelock import exclusive
from devenv.snapshot.model import Manifest
from devenv.state import cache_dir

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def project_key(project: str) -> str:
    """A directory name for a project name; names that need escaping get a digest suffix."""
    safe = _SAFE.sub("-", project).strip(".-") or "project"
    if safe == project:
        return project
    return f"{safe}-{hashlib.sha256(project.encode()).hexdigest()[:8]}"


def _mkdirs(*paths: Path) -> None:
    """Create each directory, in order, readable by its owner only."""
    for path in paths:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)


def _write(path: Path, data: bytes) -> None:
    """Write a file atomically, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class Store:
    """`<cache>/snapshots/<project>/`: `manifests/<name>.json` and `objects/<sha256>`.

    Objects are shared by the project's snapshots (a golden state and a saved one mostly hold
    the same files); removing a snapshot drops the objects no other manifest names.
    """

    def __init__(self, project: str, root: Path | None = None) -> None:
        self.project = project
        self.root = (root or cache_dir() / "snapshots") / project_key(project)

    def _dirs(self, *below: Path) -> None:
        _mkdirs(self.root.parent, self.root, *below)

    @property
    def manifests_dir(self) -> Path:
        return self.root / "manifests"

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store's own lock: one writer per project on this machine, any checkout."""
        self._dirs()
        with exclusive(self.root / ".lock"):
            yield

    def _manifest_path(self, name: str) -> Path:
        return self.manifests_dir / f"{name}.json"

    def load(self, name: str) -> Manifest | None:
        path = self._manifest_path(name)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise self._damaged(name, path, exc) from exc
        try:
            return Manifest.from_json(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._damaged(name, path, exc) from exc

    @staticmethod
    def _damaged(name: str, path: Path, exc: Exception) -> RefusedError:
        return RefusedError(
            f"snapshot {name}: its metadata {path} is unreadable ({exc})",
            hint=f"remove it with `devenv snapshot rm {name}`; nothing was changed",
        )

    def names(self) -> list[str]:
        if not self.manifests_dir.is_dir():
            return []
        return sorted(p.stem for p in self.manifests_dir.glob("*.json"))

    def write(self, manifest: Manifest) -> None:
        self._dirs(self.manifests_dir)
        text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
        _write(self._manifest_path(manifest.name), text.encode())

    def remove(self, name: str) -> bool:
        try:
            self._manifest_path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    @property
    def _synced_path(self) -> Path:
        return self.root / "bucket-synced.json"

    def synced(self) -> dict[str, tuple[str, str]]:
        """What devenv last wrote to or read from the project's bucket: key -> (the object's
        version, the listing's last-modified and size then). Empty when unknown."""
        try:
            raw = json.loads(self._synced_path.read_text(encoding="utf-8"))
            return {str(k): (str(v[0]), str(v[1])) for k, v in dict(raw).items()}
        except (OSError, ValueError, TypeError, IndexError, KeyError):
            return {}

    def write_synced(self, synced: dict[str, tuple[str, str]]) -> None:
        self._dirs()
        _write(self._synced_path, json.dumps(synced, sort_keys=True).encode())

    def destroy(self) -> list[str]:
        """Delete the whole store (`down --volumes`: the data its snapshots belong to is
        gone); returns the names of the snapshots it held."""
        names = self.names()
        if self.root.exists():
            with self.locked():
                shutil.rmtree(self.root)
        return names

    def object_path(self, sha256: str) -> Path:
        return self.objects_dir / sha256

    def add_object(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.object_path(digest)
        if not path.exists():
            self._dirs(self.objects_dir)
            _write(path, data)
        return digest

    def read_object(self, sha256: str) -> bytes:
        """The bytes of one object, checked against their digest."""
        data = self.object_path(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"object {sha256[:12]} does not match its digest")
        return data

    def gc(self) -> int:
        """Drop the objects that no manifest names; returns how many."""
        if not self.objects_dir.is_dir():
            return 0
        wanted: set[str] = set()
        for name in self.names():
            try:
                manifest = self.load(name)
            except RefusedError:
                return 0  # an unreadable manifest may name any object: keep them all
            if manifest is not None:
                wanted.update(o.sha256 for o in manifest.objects)
        dropped = 0
        for path in self.objects_dir.iterdir():
            if path.name not in wanted:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    dropped += 1
        return dropped
