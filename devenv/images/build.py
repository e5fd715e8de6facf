"""Local stand-in images, for machines that cannot pull: a debootstrapped base, then recipes."""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from devenv.errors import ImageError
from devenv.plan import ImageChoice
from devenv.runtime.base import LABEL_RECIPE_HASH, ImageInfo, Progress, Runtime
from devenv.state import cache_dir

BASE_TAG = "devenv-standin/bookworm-base:1"
S3S_VERSION = "0.14.1"
BACKEND_BINARY = "ignition-api"


def cargo_target_dir(context: Path, repo_backend: Path | None) -> Path:
    """One shared target dir for our backend, one per other backend checkout."""
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"])
    if repo_backend is not None and context.resolve() == repo_backend.resolve():
        return cache_dir() / "cargo-target"
    tag = hashlib.sha256(str(context.resolve()).encode()).hexdigest()[:10]
    return cache_dir() / f"cargo-target-{tag}"


def _hash_files(paths: Iterable[Path], base: Path, salt: str = "") -> str:
    h = hashlib.sha256(salt.encode())
    for path in sorted(paths):
        if path.is_file():
            h.update(str(path.relative_to(base)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def recipe_dir(root: Path, recipe: str) -> Path:
    return root / "compose" / "images" / recipe


def recipe_hash(root: Path, recipe: str) -> str:
    directory = recipe_dir(root, recipe)
    salt = f"{BASE_TAG}|s3s-fs {S3S_VERSION}" if recipe == "objectstore" else BASE_TAG
    return _hash_files(directory.rglob("*"), directory, salt)


def source_fingerprint(context: Path) -> str:
    """Content hash of what the backend binary is built from (fast: a few dozen small files)."""
    files: list[Path] = []
    for sub in ("src", "migrations", "crates", "build.rs", "Cargo.toml", "Cargo.lock"):
        p = context / sub
        if p.is_dir():
            files.extend(f for f in p.rglob("*") if "target" not in f.parts)
        elif p.is_file():
            files.append(p)
    runtime_df = context / "Dockerfile.runtime"
    if runtime_df.is_file():
        files.append(runtime_df)
    return _hash_files(files, context, BASE_TAG)


def backend_tag(standin: str, identity: str) -> str:
    repo = standin.rsplit(":", 1)[0] if ":" in standin.rsplit("/", 1)[-1] else standin
    return f"{repo}:src-{identity[:12]}"


KEEP_BACKEND_BUILDS = 3


def prune_backend_tags(runtime: Runtime, repository: str, *, keep: str) -> list[str]:
    """Drop all but the newest few per-source backend tags, so edits do not pile up images.

    Tags still used by a container are refused by the engine and stay.
    """
    builds = [
        ref for ref, _ in runtime.tags(repository) if ref.rpartition(":")[2].startswith("src-")
    ]
    stale = [ref for ref in builds if ref != keep][KEEP_BACKEND_BUILDS - 1 :]
    return [ref for ref in stale if runtime.untag(ref)]


def choose(
    runtime: Runtime, *, ref: str, standin: str | None, recipe: str | None, identity: str | None
) -> ImageChoice:
    """Prefer the compose image when it is already present; else the matching stand-in."""
    if recipe != "backend":
        found = runtime.image(ref)
        if found is not None:
            return ImageChoice(
                ref=ref, identity=found.id, present=True, pg_major=found.env.get("PG_MAJOR")
            )
    if standin is None or recipe is None or identity is None:
        return ImageChoice(ref=ref, identity=ref, present=False, recipe=None)
    if recipe == "backend":
        # One tag per source fingerprint: reverting an edit reuses its image, and two
        # checkouts with different backend code never rebuild over each other.
        standin = backend_tag(standin, identity)
    found = runtime.image(standin)
    present = found is not None and found.labels.get(LABEL_RECIPE_HASH) == identity
    pg_major = found.env.get("PG_MAJOR") if found is not None else None
    if recipe == "postgres" and pg_major is None:
        pg_major = "15"
    return ImageChoice(
        ref=standin, identity=identity, present=present, recipe=recipe, pg_major=pg_major
    )


def _run(
    cmd: list[str],
    *,
    what: str,
    progress: Progress,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    hint: str,
    every: float = 5.0,
) -> None:
    """Run a long build step, passing on its latest output line every few seconds."""
    progress(f"{what}: {' '.join(cmd[:4])} ...")
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise ImageError(f"{what}: `{cmd[0]}` is not installed", hint=hint) from exc
    tail: collections.deque[str] = collections.deque(maxlen=3)
    last = time.monotonic()
    with proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.strip()
            if not line:
                continue
            tail.append(line)
            if time.monotonic() - last >= every:
                last = time.monotonic()
                progress(f"  {what}: {line[:120]}")
    if proc.returncode != 0:
        raise ImageError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}", hint=hint)


_BASE_LOCK = threading.Lock()


def ensure_base(runtime: Runtime, progress: Progress) -> ImageInfo:
    """The debootstrapped base every stand-in builds on; built once even when asked in parallel."""
    with _BASE_LOCK:
        return _ensure_base(runtime, progress)


def _ensure_base(runtime: Runtime, progress: Progress) -> ImageInfo:
    found = runtime.image(BASE_TAG)
    if found is not None:
        return found
    progress(f"building base image {BASE_TAG} with debootstrap (about 30 s) ...")
    if os.geteuid() != 0:
        raise ImageError(
            f"the base image {BASE_TAG} is missing and debootstrap needs root",
            hint="run `sudo .venv/bin/devenv images build` once",
        )
    with tempfile.TemporaryDirectory(prefix="devenv-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs)],
            what="debootstrap",
            progress=progress,
            hint="install it with `apt-get install debootstrap`",
        )
        tarball = Path(tmp) / "rootfs.tar"
        _run(
            ["tar", "-C", str(rootfs), "-cf", str(tarball), "."],
            what="packing base",
            progress=progress,
            hint="check free disk space",
        )
        return runtime.import_rootfs(tarball, BASE_TAG)


def _s3s_binary(progress: Progress) -> Path:
    root = cache_dir() / f"s3s-fs-{S3S_VERSION}"
    binary = root / "bin" / "s3s-fs"
    if binary.is_file():
        return binary
    progress(f"building the S3 stand-in server s3s-fs {S3S_VERSION} with cargo (about 2 min) ...")
    _run(
        [
            "cargo",
            "install",
            f"s3s-fs@{S3S_VERSION}",
            "--locked",
            "--features",
            "binary",
            "--root",
            str(root),
        ],
        what="cargo install s3s-fs",
        progress=progress,
        hint="install Rust (cargo) and make sure the crate registry is reachable",
    )
    return binary


def build_backend_binary(context: Path, repo_backend: Path | None, progress: Progress) -> Path:
    target = cargo_target_dir(context, repo_backend)
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    progress(f"building the backend in {context.name}/ with cargo (incremental) ...")
    _run(
        ["cargo", "build", "--release", "--locked", "--bin", BACKEND_BINARY],
        cwd=context,
        env=env,
        what="cargo build (backend)",
        progress=progress,
        hint=f"fix the build error in {context}, then run `devenv up` again",
    )
    binary = target / "release" / BACKEND_BINARY
    if not binary.is_file():
        raise ImageError(
            f"cargo built no `{BACKEND_BINARY}` binary in {context}",
            hint="the backend crate must produce a binary named ignition-api",
        )
    return binary


def _runtime_dockerfile(root: Path, context: Path) -> Path:
    for candidate in (context / "Dockerfile.runtime", root / "backend" / "Dockerfile.runtime"):
        if candidate.is_file():
            return candidate
    raise ImageError(
        f"no Dockerfile.runtime in {context} to package the host-built binary",
        hint="add one (see backend/Dockerfile.runtime) or bind the backend to an image",
    )


def _backend_runtime_base(runtime: Runtime, root: Path, context: Path, progress: Progress) -> str:
    """Dockerfile.runtime built once around a placeholder binary; each new binary is then one
    layer on top of it (`layer_file`), so an edit costs a commit, not a Dockerfile build."""
    dockerfile = _runtime_dockerfile(root, context)
    digest = _hash_files([dockerfile], dockerfile.parent, BASE_TAG)
    tag = f"devenv-standin/backend-runtime:{digest}"
    if runtime.image(tag) is not None:
        return tag
    progress(f"building the backend runtime layer {tag} from {dockerfile.name} (once) ...")
    with tempfile.TemporaryDirectory(prefix="devenv-backend-runtime-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(dockerfile, ctx / "Dockerfile")
        placeholder = ctx / BACKEND_BINARY
        placeholder.write_text("#!/bin/sh\nexit 1\n")
        placeholder.chmod(0o755)
        runtime.build_image(
            ctx, tag, buildargs={"BASE_IMAGE": BASE_TAG}, labels={}, progress=progress
        )
    return tag


def build(
    runtime: Runtime, root: Path, choice: ImageChoice, *, context: Path | None, progress: Progress
) -> ImageInfo:
    """Build the stand-in `choice.ref` from its recipe, reusing whatever is already built."""
    recipe = choice.recipe
    if recipe is None:
        raise ImageError(
            f"image {choice.ref} is missing and has no local recipe",
            hint=f"pull it (`docker pull {choice.ref}`) or add x-devenv.standin to the service",
        )
    ensure_base(runtime, progress)
    labels = {LABEL_RECIPE_HASH: choice.identity}
    progress(f"building image {choice.ref} (recipe {recipe}) ...")
    if recipe == "backend":
        if context is None:
            raise ImageError("the backend has no build context", hint="set build.context")
        binary = build_backend_binary(context, root / "backend", progress)
        runtime_base = _backend_runtime_base(runtime, root, context, progress)
        info = runtime.layer_file(
            runtime_base, binary, f"/app/{BACKEND_BINARY}", choice.ref, labels=labels
        )
        repository = choice.ref.rsplit(":", 1)[0]
        runtime.tag(choice.ref, f"{repository}:dev")  # "the latest build"
        prune_backend_tags(runtime, repository, keep=choice.ref)
        return info
    with tempfile.TemporaryDirectory(prefix=f"devenv-{recipe}-") as tmp:
        ctx = Path(tmp)
        shutil.copytree(recipe_dir(root, recipe), ctx, dirs_exist_ok=True)
        if recipe == "objectstore":
            shutil.copy2(_s3s_binary(progress), ctx / "s3s-fs")
        return runtime.build_image(
            ctx, choice.ref, buildargs={"BASE_IMAGE": BASE_TAG}, labels=labels, progress=progress
        )
