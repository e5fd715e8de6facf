"""What a stand-in image is made of, as a short hash: its recipe, or the backend source.

Read on every `up` (the observation compares these with the images' labels), so this module
reads files and hashes them, and imports nothing a build needs.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from pathlib import Path

from devenv.config import defaults
from devenv.model import BackendBuild

BASE_TAG = "devenv-standin/bookworm-base:1"  # the base debootstrapped here, offline
SLIM = "debian:bookworm-slim"  # the base pulled from a registry when one answers
OBJECTSTORE_CRATE = "server"  # compose/images/objectstore/<crate>: the S3 stand-in's source
OBJECTSTORE_BINARY = "devenv-objectstore"
RUNTIME_RECIPE = "backend-runtime"  # devenv's runtime image for checkouts without their own


def hash_files(paths: Iterable[Path], base: Path, salt: str = "") -> str:
    h = hashlib.sha256(salt.encode())
    for path in sorted(paths):
        if path.is_file():
            h.update(str(path.relative_to(base)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def objectstore_binary(root: Path) -> Path:
    """Where the S3 stand-in's server is kept once cargo built it: one per recipe hash, so an
    edit of its crate builds it again."""
    from devenv.state import cache_dir

    return cache_dir() / f"objectstore-{recipe_hash(root, 'objectstore')}" / OBJECTSTORE_BINARY


def recipe_dir(root: Path, recipe: str) -> Path:
    """The project's own recipe, else devenv's packaged one."""
    return defaults.recipe_dir(root, recipe)


def recipe_hash(root: Path, recipe: str, base: str = BASE_TAG) -> str:
    """The recipe's files (the objectstore's crate included, its Cargo.lock pinning every
    dependency; never a cargo `target` directory built in place) and the base it builds on (so
    that a stand-in built on the debootstrapped base is never taken for one built on
    debian:bookworm-slim)."""
    directory = recipe_dir(root, recipe)
    files = (p for p in directory.rglob("*") if "target" not in p.relative_to(directory).parts)
    return hash_files(files, directory, base)


def source_fingerprint(context: Path, salt: str = "", base: str = BASE_TAG) -> str:
    """Content hash of what the backend binary is built from (fast: a few dozen small files)."""
    files: list[Path] = []
    for sub in (
        "src", "migrations", "crates", "build.rs", "Cargo.toml", "Cargo.lock",
        "rust-toolchain.toml", "rust-toolchain", ".cargo",
    ):  # fmt: skip
        p = context / sub
        if p.is_dir():
            files.extend(f for f in p.rglob("*") if "target" not in f.relative_to(context).parts)
        elif p.is_file():
            files.append(p)
    runtime_df = context / "Dockerfile.runtime"
    if runtime_df.is_file():
        files.append(runtime_df)
    return hash_files(files, context, base + salt)


def backend_identity(root: Path, build: BackendBuild, base: str = BASE_TAG) -> str:
    """What the backend image of `build` is made of: the source's content, where the source is
    (images are per source), the cargo options, and the runtime image it is packaged on (with
    the base that image builds on)."""
    lock = lock_file(build.context)
    salt = f"|{build.source}|{build.package}|{build.binary}|locked={build.locked}"
    if lock is not None and lock.parent != build.context:
        salt += "|" + hashlib.sha256(lock.read_bytes()).hexdigest()
    if not (build.context / "Dockerfile.runtime").is_file():
        salt += "|" + recipe_hash(root, RUNTIME_RECIPE, base)
    return source_fingerprint(build.context, salt, base)


def workspace_root(context: Path) -> Path:
    """The directory cargo treats as the workspace root for a build run in `context`."""
    here = context.resolve()
    for candidate in (here, *here.parents):
        manifest = candidate / "Cargo.toml"
        if not manifest.is_file():
            continue
        try:
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if "workspace" in data:
            return candidate
    return here


def lock_file(context: Path) -> Path | None:
    lock = workspace_root(context) / "Cargo.lock"
    return lock if lock.is_file() else None
