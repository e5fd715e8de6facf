"""Local stand-in images, for machines that cannot pull: a debootstrapped base, then recipes."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path

from devenv.errors import ImageError
from devenv.filelock import exclusive
from devenv.images import acquire, elf
from devenv.images.identity import (
    BASE_TAG,
    OBJECTSTORE_BINARY,
    OBJECTSTORE_CRATE,
    RUNTIME_RECIPE,
    hash_files,
    lock_file,
    objectstore_binary,
    recipe_dir,
    workspace_root,
)
from devenv.model import BackendBuild, ImageChoice
from devenv.runtime.base import (
    LABEL_BASE,
    LABEL_BUILT_AT,
    LABEL_GLIBC,
    LABEL_RECIPE_HASH,
    LABEL_SOURCE,
    LABEL_SOURCE_PATH,
    ImageInfo,
    Progress,
    Runtime,
)
from devenv.state import cache_dir, image_claims

BACKEND_BINARY = BackendBuild.binary  # the binary's name inside the image: /app/ignition-api


def cargo_target_dir(context: Path, repo_backend: Path | None) -> Path:
    """One shared target dir for our backend, one per other backend checkout."""
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"])
    if repo_backend is not None and context.resolve() == repo_backend.resolve():
        return cache_dir() / "cargo-target"
    tag = hashlib.sha256(str(context.resolve()).encode()).hexdigest()[:10]
    return cache_dir() / f"cargo-target-{tag}"


KEEP_BACKEND_BUILDS = 3


def _built_at(info: ImageInfo) -> float:
    try:
        return float(info.labels.get(LABEL_BUILT_AT, ""))
    except ValueError:
        return float(info.created)


def prune_backend_images(
    runtime: Runtime, repository: str, *, source: str, keep: str, protected: Collection[str]
) -> list[str]:
    """Drop the backend builds of one source beyond its newest few, so edits do not pile up
    images. Never touched: another source's images (or unlabelled ones), an image any
    container on the engine was made from (any project), and one any project claims
    (`protected`: references and ids from the machine's image claims)."""
    in_use = runtime.images_in_use()
    mine = [
        info
        for info in runtime.list_images(repository)
        if info.labels.get(LABEL_SOURCE) == source
        and any(ref.rpartition(":")[2].startswith("src-") for ref in info.tags)
    ]
    mine.sort(key=lambda info: (keep not in info.tags, -_built_at(info)))
    removed: list[str] = []
    for info in mine[KEEP_BACKEND_BUILDS:]:
        if info.id in in_use or info.id in protected or set(info.tags) & set(protected):
            continue
        for ref in sorted(info.tags):
            if ref.rpartition(":")[2].startswith("src-") and runtime.untag(ref):
                removed.append(ref)
    return removed


def run_step(
    cmd: list[str],
    *,
    what: str,
    progress: Progress,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    hint: str,
    every: float = 5.0,
    cause_hint: bool = False,
) -> None:
    """Run a long build step, passing on its latest output line every few seconds.

    With `cause_hint`, a failure's hint quotes the first `error:` line of the output (cargo's
    real cause) instead of the generic `hint`."""
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
    first_error = ""
    last = time.monotonic()
    with proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.strip()
            if not line:
                continue
            tail.append(line)
            if not first_error and _ERROR_LINE.match(line):
                first_error = line
            if time.monotonic() - last >= every:
                last = time.monotonic()
                progress(f"  {what}: {line[:120]}")
    if proc.returncode != 0:
        if cause_hint and first_error:
            hint = _cause_hint(first_error, cwd)
        raise ImageError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}", hint=hint)


_run = run_step
_ERROR_LINE = re.compile(r"error(\[[A-Z0-9]+\])?: ")


def _cause_hint(first_error: str, cwd: Path | None) -> str:
    where = f" in {cwd}" if cwd else ""
    if "--locked was passed" in first_error:
        return (
            f"{first_error[:200]}: refresh the lock file with `cargo update --workspace`{where} "
            "and commit it, or give the profile services.backend.locked = false"
        )
    return f"{first_error[:200]}: fix that{where}, then run `devenv up` again"


def base_glibc(runtime: Runtime, base: ImageInfo, ref: str = BASE_TAG) -> elf.Version | None:
    """The base image's glibc: its label, or (for a base built before the label existed, or
    one pulled) its dpkg status, read once and remembered per image id."""
    labelled = elf.parse_version(base.labels.get(LABEL_GLIBC, ""))
    if labelled is not None:
        return labelled
    memo = cache_dir() / f"base-glibc-{base.id.removeprefix('sha256:')[:16]}"
    with contextlib.suppress(OSError):
        remembered = elf.parse_version(memo.read_text(encoding="utf-8"))
        if remembered is not None:
            return remembered
    status = runtime.read_file(ref, "/var/lib/dpkg/status")
    found = elf.glibc_from_dpkg_status(status.decode(errors="replace")) if status else None
    if found is not None:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(elf.show(found), encoding="utf-8")
    return found


def check_glibc(runtime: Runtime, binary: Path, progress: Progress, base: str = BASE_TAG) -> None:
    """Refuse a host-built binary that needs a newer glibc than the runtime image has: it
    would fail at start in the container ("GLIBC_2.39 not found")."""
    try:
        needed = elf.required_glibc(binary)
    except ValueError as exc:
        raise ImageError(
            f"the backend binary cannot run in a Linux container: {exc}",
            hint="build it on Linux, or bind services.backend.image to an image built elsewhere",
        ) from exc
    if needed is None:
        return
    have = base_glibc(runtime, acquire.require(runtime, base), base)
    if have is None:
        progress(f"warning: cannot tell the glibc of {base}; not checking the binary's")
        return
    if needed > have:
        raise ImageError(
            f"the backend binary {binary.name} built on this host needs glibc "
            f"{elf.show(needed)} (GLIBC_{elf.show(needed)}) but the runtime base {base} "
            f"has glibc {elf.show(have)}, so it would not start there",
            hint=f"build on a host with glibc {elf.show(have)} or older (Debian bookworm, "
            "e.g. a rust:bookworm container), or build an image with the checkout's own "
            "Dockerfile and bind services.backend.image to it",
        )


def _objectstore_binary(root: Path, progress: Progress) -> Path:
    """devenv-objectstore, built with host cargo from the recipe's own crate
    (compose/images/objectstore/server); cached per recipe hash, so an edit rebuilds it."""
    crate = recipe_dir(root, "objectstore") / OBJECTSTORE_CRATE
    done = objectstore_binary(root)
    if done.is_file():
        return done
    target = cache_dir() / "objectstore-target"  # cargo locks it against a parallel build
    progress("building the S3 stand-in server devenv-objectstore with cargo (about 2 min) ...")
    _run(
        [
            "cargo",
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            str(crate / "Cargo.toml"),
            "--target-dir",
            str(target),
        ],
        what="cargo build (objectstore)",
        progress=progress,
        hint="install Rust (cargo) and make sure the crate registry is reachable",
        cause_hint=True,
    )
    done.parent.mkdir(parents=True, exist_ok=True)
    partial = done.with_name(f".{done.name}.{os.getpid()}.tmp")
    shutil.copy2(target / "release" / OBJECTSTORE_BINARY, partial)
    partial.replace(done)
    return done


TARGET_LOCK = "devenv-build.lock"  # in a cargo target dir: held from a build to the copy out


@contextlib.contextmanager
def _target_lock(target: Path) -> Iterator[None]:
    """Serialise devenv's builds in one cargo target dir from the build to copying the binary
    out: two sources built into one dir both write release/<binary>."""
    with exclusive(target / TARGET_LOCK):
        yield


def cargo_locked(build: BackendBuild, progress: Progress) -> bool:
    """--locked when the checkout has a Cargo.lock, unless the profile forces either way."""
    lock = lock_file(build.context)
    root = workspace_root(build.context)
    if build.locked is True and lock is None:
        raise ImageError(
            f"services.backend.locked = true but {root} has no Cargo.lock",
            hint="commit a Cargo.lock (`cargo generate-lockfile`), or drop services.backend.locked",
        )
    if build.locked is None and lock is None:
        progress(
            f"backend: {root} has no Cargo.lock: building unlocked (cargo resolves dependency "
            "versions now and writes a Cargo.lock there: commit it for repeatable builds)"
        )
        return False
    if build.locked is False:
        progress("backend: building without --locked, as services.backend.locked = false asks")
        return False
    return True


def cargo_command(
    build: BackendBuild,
    *,
    locked: bool,
    profile: str = "release",
    unoptimized: Collection[str] = (),
) -> list[str]:
    """`cargo build` of the API's package and binary: the image build's (release) and, with
    the same flags and target dir so that it reuses what they compiled, `devenv watch`'s.

    `fast` is the release build with the `unoptimized` packages (the checkout's own crates) at
    opt-level 0: the dependencies are exactly the release ones, and an edit recompiles about
    as fast as a dev build. `dev` is cargo's dev profile."""
    cmd = ["cargo", "build", *(["--release"] if profile in ("release", "fast") else [])]
    cmd += ["--locked"] if locked else []
    if profile == "fast":
        for package in sorted(unoptimized):
            cmd += ["--config", f"profile.release.package.{package}.opt-level=0"]
    return [*cmd, "-p", build.package, "--bin", build.binary]


def built_binary(target: Path, build: BackendBuild, profile: str = "release") -> Path:
    return target / ("debug" if profile == "dev" else "release") / build.binary


def build_backend_binary(
    build: BackendBuild, repo_backend: Path | None, progress: Progress, dest: Path
) -> Path:
    """cargo build the package's binary at the checkout; returns a copy of it in `dest`."""
    target = cargo_target_dir(build.context, repo_backend)
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    cmd = cargo_command(build, locked=cargo_locked(build, progress))
    progress(
        f"building the backend in {build.source} with cargo (package {build.package}, "
        f"binary {build.binary}; incremental) ..."
    )
    with _target_lock(target):
        _run(
            cmd,
            cwd=build.context,
            env=env,
            what="cargo build (backend)",
            progress=progress,
            hint=f"fix the build in {build.source}, then run `devenv up` again",
            cause_hint=True,
        )
        built = built_binary(target, build)
        if not built.is_file():
            raise ImageError(
                f"cargo built no `{build.binary}` binary in {build.source}",
                hint="set services.backend.package and services.backend.binary to the API's "
                "package and binary",
            )
        copy = dest / BACKEND_BINARY
        shutil.copy2(built, copy)
    return copy


def runtime_dockerfile(root: Path, context: Path) -> tuple[Path, bool]:
    """The checkout's own Dockerfile.runtime, else devenv's recipe; True when it is the own."""
    own = context / "Dockerfile.runtime"
    if own.is_file():
        return own, True
    return recipe_dir(root, RUNTIME_RECIPE) / "Dockerfile", False


def _backend_runtime_base(
    runtime: Runtime, root: Path, context: Path, progress: Progress, base: str = BASE_TAG
) -> str:
    """Dockerfile.runtime built once around a placeholder binary; each new binary is then one
    layer on top of it (`layer_file`), so an edit costs a commit, not a Dockerfile build."""
    dockerfile, own = runtime_dockerfile(root, context)
    if not own:
        progress(
            f"backend: {context.resolve()} has no Dockerfile.runtime: packaging on devenv's "
            "runtime image (Debian bookworm with libssl3 and ca-certificates)"
        )
    digest = hash_files([dockerfile], dockerfile.parent, base)
    tag = f"devenv-standin/backend-runtime:{digest}"
    if runtime.image(tag) is not None:
        return tag
    progress(f"building the backend runtime layer {tag} from {dockerfile} (once) ...")
    with tempfile.TemporaryDirectory(prefix="devenv-backend-runtime-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(dockerfile, ctx / "Dockerfile")
        placeholder = ctx / BACKEND_BINARY
        placeholder.write_text("#!/bin/sh\nexit 1\n")
        placeholder.chmod(0o755)
        runtime.build_image(
            ctx, tag, buildargs={"BASE_IMAGE": base}, labels={LABEL_BASE: base}, progress=progress
        )
    return tag


def package_backend(
    runtime: Runtime,
    root: Path,
    choice: ImageChoice,
    *,
    build: BackendBuild,
    binary: Path,
    progress: Progress,
) -> ImageInfo:
    """Put a host-built binary on the runtime image, labelled with its source, then prune
    that source's stale builds."""
    base = choice.base or BASE_TAG
    check_glibc(runtime, binary, progress, base)
    runtime_base = _backend_runtime_base(runtime, root, build.context, progress, base)
    labels = {
        LABEL_RECIPE_HASH: choice.identity,
        LABEL_SOURCE: build.source_id,
        LABEL_SOURCE_PATH: str(build.source),
        LABEL_BUILT_AT: f"{time.time():.6f}",
    }
    info = runtime.layer_file(
        runtime_base, binary, f"/app/{BACKEND_BINARY}", choice.ref, labels=labels
    )
    repository = choice.ref.rsplit(":", 1)[0]
    if build.source == (root / "backend").resolve():
        # `:dev` names the latest build of the reference backend (tests and the benchmark
        # run it directly); another source never moves it.
        runtime.tag(choice.ref, f"{repository}:dev")
    with image_claims() as claims:
        protected = claims.names()
    prune_backend_images(
        runtime, repository, source=build.source_id, keep=choice.ref, protected=protected
    )
    return info


def build(
    runtime: Runtime,
    root: Path,
    choice: ImageChoice,
    *,
    backend: BackendBuild | None,
    progress: Progress,
) -> ImageInfo:
    """Build the stand-in `choice.ref` from its recipe, reusing whatever is already built."""
    recipe = choice.recipe
    if recipe is None:
        raise ImageError(
            f"image {choice.ref} is missing and has no local recipe",
            hint=f"pull it (`docker pull {choice.ref}`) or add x-devenv.standin to the service",
        )
    base = choice.base or BASE_TAG
    acquire.require(runtime, base)
    labels = {LABEL_RECIPE_HASH: choice.identity, LABEL_BASE: base}
    progress(f"building image {choice.ref} (recipe {recipe}, on {base}) ...")
    if recipe == "backend":
        if backend is None:
            raise ImageError("the backend has no build context", hint="set build.context")
        with tempfile.TemporaryDirectory(prefix="devenv-backend-") as tmp:
            binary = build_backend_binary(backend, root / "backend", progress, Path(tmp))
            return package_backend(
                runtime, root, choice, build=backend, binary=binary, progress=progress
            )
    with tempfile.TemporaryDirectory(prefix=f"devenv-{recipe}-") as tmp:
        ctx = Path(tmp)
        source = recipe == "objectstore"  # its crate: the image gets the binary, not the source
        skip = shutil.ignore_patterns(OBJECTSTORE_CRATE) if source else None
        shutil.copytree(recipe_dir(root, recipe), ctx, dirs_exist_ok=True, ignore=skip)
        if source:
            shutil.copy2(_objectstore_binary(root, progress), ctx / OBJECTSTORE_BINARY)
        return runtime.build_image(
            ctx, choice.ref, buildargs={"BASE_IMAGE": base}, labels=labels, progress=progress
        )
