"""Scaffold checks: the backend source compiles, is formatted, lints and has a Dockerfile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devenv.checks import ids
from devenv.model import CheckResult

DEFAULT_TIMEOUT = 900.0
CARGO_CHECKS = (ids.SCAFFOLD_CARGO_CHECK, ids.SCAFFOLD_CARGO_FMT, ids.SCAFFOLD_CARGO_CLIPPY)
EXCERPT_LINES = 8  # of a compiler error's rendering: its place and the source around it


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
        done = self.run(["check", "--all-targets", "--message-format=json"])
        if isinstance(done, str):
            return _result(cid, False, f"expected cargo check to pass, got {done}")
        found = diagnostics(done.stdout)
        if done.returncode != 0:
            return _result(cid, False, f"expected cargo check to pass, got {_failure(found, done)}")
        return _result(
            cid, True, f"cargo check passes (0 errors, {_count(found.warnings, 'warning')})"
        )

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
        found = diagnostics(done.stdout)
        if done.returncode != 0:
            got = _failure(found, done)
            return _result(cid, False, f"expected cargo clippy to pass, got {got}")
        return _result(cid, True, f"cargo clippy passes ({_count(found.warnings, 'warning')})")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _failure(found: Diagnostics, done: subprocess.CompletedProcess[str]) -> str:
    """The first compiler error with its place, and the counts; else cargo's own first error."""
    if found.first_error is None:
        first = next(
            (
                line.strip()
                for line in done.stderr.splitlines()
                if line.strip().startswith(("error", "fatal"))
            ),
            None,
        )
        return first or _last_line(done.stderr, done.stdout)
    counts = f"{_count(found.errors, 'error')} ({_count(found.warnings, 'warning')})"
    return f"{counts}; first: {found.first_error}"


@dataclass(frozen=True)
class Diagnostics:
    errors: int
    warnings: int
    first_error: str | None  # "error[E0425]: cannot find value `x` in this scope at src/a.rs:3:5"
    first_rendered: str = ""  # the compiler's own rendering of that error: place and excerpt


def diagnostics(json_lines: str) -> Diagnostics:
    """Distinct errors and warnings with a source location in cargo's JSON messages, and the
    first error as one line.

    Summaries ("aborting due to 73 previous errors") carry no span and are not counted; the
    same diagnostic reported for several targets counts once.
    """
    seen: dict[str, set[str]] = {"error": set(), "warning": set()}
    first: str | None = None
    rendered = ""
    for line in json_lines.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(message, dict) or message.get("reason") != "compiler-message":
            continue
        body = message.get("message")
        if not isinstance(body, dict) or not body.get("spans"):
            continue
        level = str(body.get("level", ""))
        kind = "error" if level.startswith("error") else level
        if kind not in seen:
            continue
        seen[kind].add(json.dumps([body.get("message"), body.get("spans")], sort_keys=True))
        if kind == "error" and first is None:
            first = _error_line(body)
            rendered = str(body.get("rendered") or "")
    return Diagnostics(len(seen["error"]), len(seen["warning"]), first, rendered)


def first_error(json_lines: str, stderr: str) -> tuple[str, tuple[str, ...]]:
    """The first error of a failed `cargo build --message-format=json` as one line (with its
    file:line) and a short excerpt of the source around it; cargo's own first `error` line
    when the compiler said nothing (a bad manifest, a stale lock file, a build script)."""
    found = diagnostics(json_lines)
    if found.first_error is not None:
        body = found.first_rendered.rstrip().splitlines()[1:]
        return found.first_error, tuple(line for line in body[:EXCERPT_LINES] if line.strip())
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if line.lstrip().startswith("error")), None)
    if at is None:
        return _last_line(stderr, json_lines), ()
    return lines[at].strip(), tuple(lines[at + 1 : at + 1 + EXCERPT_LINES])


def _error_line(body: Mapping[str, object]) -> str:
    code = body.get("code")
    ident = code.get("code") if isinstance(code, dict) else None
    head = f"error[{ident}]" if ident else "error"
    text = " ".join(str(body.get("message", "")).split())
    raw = body.get("spans")
    spans = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    if primary is None:
        return f"{head}: {text}"
    where = f"{primary.get('file_name')}:{primary.get('line_start')}:{primary.get('column_start')}"
    return f"{head}: {text} at {where}"


def count_warnings(json_lines: str) -> int:
    """Distinct warnings with a source location in cargo's JSON messages."""
    return diagnostics(json_lines).warnings


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
