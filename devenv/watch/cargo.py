"""One `cargo build` of the backend that a newer save can cancel at any moment.

cargo runs in a process group of its own (a terminal's Ctrl-C does not reach it; `cancel`
sends the group SIGINT, as a Ctrl-C would, then SIGKILL if it lingers). The build holds the
target dir's devenv lock, which it waits for without blocking a cancel, from the start of
cargo until the binary is linked out of the target dir: a build of another source into the
same dir cannot replace it before it is served.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_AFTER = 3.0  # seconds between the SIGINT of a cancel and a SIGKILL
LOCK_POLL = 0.05


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    seconds: float
    binary: Path | None = None  # the built binary, linked out of the target dir
    error: str = ""  # the first error, one line with its file:line
    excerpt: tuple[str, ...] = ()
    cancelled: bool = False
    stamp: tuple[int, int] | None = None  # (mtime ns, size): cargo relinked it, or not


class CargoBuild:
    """Start with `start()`; poll `result()`; `cancel()` from any thread."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        lock: Path,
        built: Path,
        keep: Path,
        done: Callable[[CargoBuild], None] | None = None,
    ) -> None:
        self.command = [*command, "--message-format=json"]
        self.cwd, self.env, self.lock, self.built, self.keep = cwd, dict(env), lock, built, keep
        self._on_done = done  # called from the build thread when the result is there
        self._cancel = threading.Event()
        self._guard = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._result: BuildResult | None = None
        self._done = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="cargo build", daemon=True)

    def start(self) -> CargoBuild:
        self._thread.start()
        return self

    def result(self, timeout: float = 0.0) -> BuildResult | None:
        """The outcome once cargo has finished (or was cancelled); None while it runs."""
        self._done.wait(timeout)
        return self._result

    def cancel(self) -> None:
        """Stop the build now; `result()` then says cancelled."""
        self._cancel.set()
        with self._guard:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
            timer = threading.Timer(KILL_AFTER, self._kill, (proc,))
            timer.daemon = True
            timer.start()

    def _kill(self, proc: subprocess.Popen[str]) -> None:
        """The group is still holding on (cargo gone, a child left): end it."""
        if not self._done.is_set():
            _signal_group(proc, signal.SIGKILL)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # --- the build thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._result = self._build()
        finally:
            self._done.set()
            if self._on_done is not None:
                self._on_done(self)

    def _build(self) -> BuildResult:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if self._cancel.wait(LOCK_POLL):  # another devenv builds in this dir
                        return self._cancelled()
            try:
                return self._cargo()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _cargo(self) -> BuildResult:
        from devenv.checks.scaffold import first_error

        try:
            with self._guard:
                if self._cancel.is_set():
                    return self._cancelled()
                self._proc = subprocess.Popen(
                    self.command,
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    start_new_session=True,
                )
        except FileNotFoundError:
            return self._failed("`cargo` is not installed (or not on PATH)")
        out, err = self._proc.communicate()
        if self._cancel.is_set():
            return self._cancelled()
        if self._proc.returncode != 0:
            error, excerpt = first_error(out, err)
            return BuildResult(False, self._seconds(), error=error, excerpt=excerpt)
        if not self.built.is_file():
            return self._failed(
                f"cargo built no `{self.built.name}` binary: set services.backend.package and "
                "services.backend.binary to the API's package and binary"
            )
        info = self.built.stat()
        stamp = (info.st_mtime_ns, info.st_size)
        return BuildResult(True, self._seconds(), binary=self._keep(), stamp=stamp)

    def _keep(self) -> Path:
        """The binary as built now, out of cargo's reach: a hard link (instant; cargo writes
        its next build to a new file) or, across file systems, a copy."""
        self.keep.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.keep.unlink()
        try:
            os.link(self.built, self.keep)
        except OSError:
            shutil.copy2(self.built, self.keep)
        return self.keep

    def _seconds(self) -> float:
        return time.monotonic() - self._started

    def _cancelled(self) -> BuildResult:
        return BuildResult(False, self._seconds(), cancelled=True)

    def _failed(self, error: str) -> BuildResult:
        return BuildResult(False, self._seconds(), error=error)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def workspace_packages(context: Path, env: Mapping[str, str], fallback: str) -> list[str]:
    """The names of the workspace's own packages (`cargo metadata`, no dependencies read);
    just `fallback` when cargo cannot tell (the build then says why)."""
    import json

    try:
        done = subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=context,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        data = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        data = {}
    members = set(data.get("workspace_members") or ())
    names = [str(p["name"]) for p in data.get("packages") or () if p.get("id") in members]
    return sorted(set(names)) or [fallback]
