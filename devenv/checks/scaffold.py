"""Scaffold checks: the backend source compiles, is formatted, lints and has a Dockerfile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from devenv.checks import ids
from devenv.model import CheckResult

DEFAULT_TIMEOUT = 900.0
CARGO_CHECKS = (ids.SCAFFOLD_CARGO_CHECK, ids.SCAFFOLD_CARGO_FMT, ids.SCAFFOLD_CARGO_CLIPPY)


def run_scaffold_checks(
    context: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    target_dir: Path | None = None,
) -> list[CheckResult]:
    """cargo check, cargo fmt --check, cargo clippy and the Dockerfile, in id order.

    The cargo steps run one after another because they share (and lock) one target directory;
    without a Cargo.toml or without cargo on PATH they are skipped with the reason.
    """
    base_env = dict(os.environ if env is None else env)
    if context is None or not (context / "Cargo.toml").is_file():
        reason = (
            "skipped: no backend source given"
            if context is None
            else f"skipped: no Cargo.toml in {context.name or context}"
        )
        return [_skip(cid, reason) for cid in (*CARGO_CHECKS, ids.SCAFFOLD_DOCKERFILE)]
    cargo = shutil.which("cargo", path=base_env.get("PATH"))
    if cargo is None:
        results = [_skip(cid, "skipped: cargo not on PATH") for cid in CARGO_CHECKS]
    else:
        if target_dir is not None:  # the image builder's, so nothing is compiled twice
            base_env.setdefault("CARGO_TARGET_DIR", str(target_dir))
        run = _Runner(cargo, context, base_env, timeout)
        results = [run.check(), run.fmt(), run.clippy()]
    return [*results, _dockerfile(context)]


def _skip(check_id: str, reason: str) -> CheckResult:
    return CheckResult(check_id, ids.check_name(check_id), ok=True, detail=reason, skipped=True)


def _result(check_id: str, ok: bool, detail: str) -> CheckResult:
    return CheckResult(check_id, ids.check_name(check_id), ok=ok, detail=detail)


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no output"


class _Runner:
    def __init__(self, cargo: str, cwd: Path, env: Mapping[str, str], timeout: float) -> None:
        self.cargo, self.cwd, self.env, self.timeout = cargo, cwd, env, timeout

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str] | str:
        """The finished process, or a one-line reason why it could not finish."""
        try:
            return subprocess.run(
                [self.cargo, *args],
                cwd=self.cwd,
                env=dict(self.env),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"no result within {self.timeout:g}s"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"

    def check(self) -> CheckResult:
        cid = ids.SCAFFOLD_CARGO_CHECK
        done = self.run(["check", "--all-targets"])
        if isinstance(done, str):
            return _result(cid, False, f"expected cargo check to pass, got {done}")
        if done.returncode != 0:
            return _result(
                cid, False, f"expected cargo check to pass, got {_last_line(done.stderr)}"
            )
        return _result(cid, True, "cargo check passes (0 errors)")

    def fmt(self) -> CheckResult:
        cid = ids.SCAFFOLD_CARGO_FMT
        done = self.run(["fmt", "--check"])
        if isinstance(done, str):
            return _result(cid, False, f"expected formatted sources, got {done}")
        if done.returncode != 0:
            files = sum(1 for line in done.stdout.splitlines() if line.startswith("Diff in "))
            got = f"{files} unformatted hunks" if files else _last_line(done.stderr, done.stdout)
            return _result(cid, False, f"expected formatted sources, got {got}")
        return _result(cid, True, "cargo fmt --check passes")

    def clippy(self) -> CheckResult:
        cid = ids.SCAFFOLD_CARGO_CLIPPY
        done = self.run(["clippy", "--all-targets", "--message-format=json"])
        if isinstance(done, str):
            return _result(cid, False, f"expected cargo clippy to finish, got {done}")
        if done.returncode != 0:
            return _result(
                cid, False, f"expected cargo clippy to pass, got {_last_line(done.stderr)}"
            )
        warnings = count_warnings(done.stdout)
        noun = "warning" if warnings == 1 else "warnings"
        return _result(cid, True, f"cargo clippy passes ({warnings} {noun})")


def count_warnings(json_lines: str) -> int:
    """Distinct warnings with a source location in cargo's JSON messages.

    Summaries carry no span; the same warning reported for several targets counts once.
    """
    seen: set[str] = set()
    for line in json_lines.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(message, dict) or message.get("reason") != "compiler-message":
            continue
        body = message.get("message")
        if isinstance(body, dict) and body.get("level") == "warning" and body.get("spans"):
            seen.add(json.dumps([body.get("message"), body.get("spans")], sort_keys=True))
    return len(seen)


def _dockerfile(context: Path) -> CheckResult:
    cid = ids.SCAFFOLD_DOCKERFILE
    path = context / "Dockerfile"
    if not path.is_file():
        return _result(cid, False, "expected a Dockerfile in the backend source, got none")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return _result(cid, False, f"expected a readable Dockerfile, got {exc.strerror}")
    stages = sum(1 for line in text.splitlines() if line.strip().upper().startswith("FROM "))
    noun = "stage" if stages == 1 else "stages"
    return _result(cid, True, f"Dockerfile present ({stages} {noun})")
