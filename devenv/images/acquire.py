"""Getting an image the plan chose: pull it with progress, or build the base the recipes
start FROM (debootstrap as root, mmdebstrap in a user namespace without root)."""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from devenv.errors import ImageError, RefusedError
from devenv.images import elf
from devenv.images.choice import BaseChoice
from devenv.images.registry import PullProgress, pulled_line
from devenv.model import ImageChoice
from devenv.runtime.base import LABEL_GLIBC, LABEL_PG_MAJOR, ImageInfo, Observed, Progress, Runtime

PULL_IDLE = 120.0  # seconds without a word from the engine before a pull is given up
PROGRESS_EVERY = 3.0  # seconds between two progress lines of one pull
MIRROR = "http://deb.debian.org/debian"


def pull(
    runtime: Runtime,
    ref: str,
    *,
    label: str,
    progress: Progress,
    stop: Callable[[], bool],
    every: float = PROGRESS_EVERY,
    clock: Callable[[], float] = time.monotonic,
) -> ImageInfo:
    """Pull `ref`, saying layers and megabytes every few seconds, then one line with the
    size and the time: `postgres  pulled postgres:15.10-bookworm (148.2 MB, 12.3 s)`."""
    state = PullProgress()
    started = clock()
    last = [started]
    progress(f"{label}  pulling {ref} ...")

    def events(event: Mapping[str, object]) -> None:
        state.feed(event)
        if clock() - last[0] >= every:
            last[0] = clock()
            progress(f"{label}  pulling {ref}: {state.line()}")

    info = runtime.pull(ref, events=events, stop=stop, idle=PULL_IDLE)
    progress(pulled_line(label, ref, state, clock() - started))
    return info


def check_pg_major(service: str, choice: ImageChoice, info: ImageInfo, engine: Observed) -> None:
    """The plan read the Postgres major version off the tag; the pulled image says it in
    PG_MAJOR. When they differ, the data volume's own major decides: nothing is created on a
    data directory of another major version."""
    pulled = info.env.get("PG_MAJOR")
    if choice.pg_major is None or pulled is None or pulled == choice.pg_major:
        return
    held = [
        v.labels.get(LABEL_PG_MAJOR)
        for v in engine.volumes
        if v.labels.get(LABEL_PG_MAJOR) not in (None, pulled)
    ]
    raise RefusedError(
        f"service {service}: image {choice.ref} is Postgres {pulled} (PG_MAJOR), not "
        f"{choice.pg_major} as its tag says"
        + (f", and the data volume holds Postgres {held[0]}" if held else ""),
        hint=f"name a Postgres {choice.pg_major} image in compose.yaml, then run `devenv up`",
    )


_BASE_LOCK = threading.Lock()


def build_base(runtime: Runtime, base: BaseChoice, *, progress: Progress) -> ImageInfo:
    """The debootstrapped base, built once even when asked in parallel: as root with
    debootstrap, else without root by mmdebstrap in a user namespace (`--mode=unshare`)."""
    with _BASE_LOCK:
        found = runtime.image(base.ref)
        if found is not None:
            return found
        if base.method is None:
            raise ImageError(
                f"the base image {base.ref} must be built on this machine and this user "
                "cannot build it",
                hint=base.hint,
            )
        from devenv.images.build import run_step

        progress(f"base  building {base.ref} with {base.method} (a minute or two) ...")
        with tempfile.TemporaryDirectory(prefix="devenv-base-") as tmp:
            tarball = Path(tmp) / "rootfs.tar"
            if base.method == "debootstrap":
                rootfs = Path(tmp) / "rootfs"
                cmd = ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR]
                run_step(cmd, what="debootstrap", progress=progress, hint=_hint("debootstrap"))
                pack = ["tar", "-C", str(rootfs), "-cf", str(tarball), "."]
                run_step(pack, what="packing base", progress=progress, hint="check free space")
            else:
                mode = base.method.split()[1:]  # ["--mode=unshare"], or root's default
                cmd = ["mmdebstrap", *mode, "--variant=minbase", "bookworm", str(tarball), MIRROR]
                run_step(cmd, what="mmdebstrap", progress=progress, hint=_hint("mmdebstrap"))
            labels = {}
            glibc = _glibc_of(tarball)
            if glibc is not None:
                labels[LABEL_GLIBC] = elf.show(glibc)
            return runtime.import_rootfs(tarball, base.ref, labels=labels)


def _hint(tool: str) -> str:
    return (
        f"read {tool}'s last lines above; the Debian mirror ({MIRROR}) must be reachable, "
        "then run again"
    )


def _glibc_of(tarball: Path) -> elf.Version | None:
    """libc6's version from the root file system's dpkg status."""
    with contextlib.suppress(OSError, tarfile.TarError, KeyError), tarfile.open(tarball) as tar:
        for name in ("./var/lib/dpkg/status", "var/lib/dpkg/status"):
            with contextlib.suppress(KeyError):
                member = tar.extractfile(name)
                if member is not None:
                    return elf.glibc_from_dpkg_status(member.read().decode(errors="replace"))
    return None


def require(runtime: Runtime, ref: str) -> ImageInfo:
    """The base a recipe build starts FROM, which the plan acquired before the build."""
    found = runtime.image(ref)
    if found is None:
        raise ImageError(
            f"the base image {ref} is missing",
            hint="run `devenv up` (or `devenv images build`): it pulls or builds the base first",
        )
    return found
