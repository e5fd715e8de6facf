"""Scaffold checks with a stand-in cargo on PATH, plus one run of the real cargo when present."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from devenv.checks import ids
from devenv.checks.scaffold import count_warnings, run_scaffold_checks

FAKE_CARGO = """#!/bin/sh
echo "$1 target=$CARGO_TARGET_DIR" >> "$FAKE_LOG"
case "$1" in
  check) if [ -n "$FAIL_CHECK" ]; then
           if [ -n "$CHECK_OUT" ]; then cat "$CHECK_OUT"; fi
           echo "   Compiling api" >&2; echo "error: could not compile api" >&2;
           echo "warning: build failed, waiting for other jobs to finish..." >&2; exit 101; fi ;;
  fmt) if [ -n "$FAIL_FMT" ]; then
         echo "Diff in src/main.rs at line 1:"; echo "Diff in src/lib.rs at line 3:"; exit 1; fi ;;
  clippy) cat "$CLIPPY_OUT" ;;
esac
exit 0
"""


def warning(text: str, *, span: bool = True, level: str = "warning", **extra: object) -> str:
    spans = [{"file_name": "src/main.rs", "line_start": 1, "column_start": 1}] if span else []
    message = {"level": level, "message": text, "spans": extra.pop("spans", spans), **extra}
    return json.dumps({"reason": "compiler-message", "message": message})


def error(text: str, code: str | None, file: str, line: int, column: int) -> str:
    spans = [
        {"file_name": "src/lib.rs", "line_start": 99, "column_start": 1, "is_primary": False},
        {"file_name": file, "line_start": line, "column_start": column, "is_primary": True},
    ]
    return warning(text, level="error", code={"code": code} if code else None, spans=spans)


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    root = tmp_path / "backend"
    root.mkdir()
    (root / "Cargo.toml").write_text('[package]\nname = "api"\n')
    (root / "Dockerfile").write_text("FROM rust AS build\nFROM debian\n")
    return root


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cargo = bin_dir / "cargo"
    cargo.write_text(FAKE_CARGO)
    cargo.chmod(cargo.stat().st_mode | stat.S_IEXEC)
    clippy = tmp_path / "clippy.jsonl"
    lines = [warning("function `a` is never used"), warning("unused variable: `x`")]
    lines += [warning("2 warnings emitted", span=False), "not json", '{"reason": "build-finished"}']
    clippy.write_text("\n".join(lines) + "\n")
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_LOG": str(tmp_path / "cargo.log"),
        "CLIPPY_OUT": str(clippy),
        "CARGO_TARGET_DIR": str(tmp_path / "target"),
    }


def by_id(results: list[object]) -> dict[str, object]:
    return {r.id: r for r in results}  # type: ignore[attr-defined]


def test_passing_scaffold_reports_the_warning_count_and_runs_cargo_in_order(
    crate: Path, env: dict[str, str], tmp_path: Path
) -> None:
    results = run_scaffold_checks(crate, env=env)
    assert [r.id for r in results] == list(ids.SCAFFOLD_CHECKS)
    assert all(r.ok and not r.skipped for r in results)
    assert results[2].detail == "cargo clippy passes (2 warnings)"
    assert results[3].detail == "Dockerfile present (2 stages)"
    log = (tmp_path / "cargo.log").read_text().splitlines()
    assert log == [f"{cmd} target={tmp_path / 'target'}" for cmd in ("check", "fmt", "clippy")]


def test_failures_without_compiler_messages_quote_cargos_first_error_or_the_diff_count(
    crate: Path, env: dict[str, str]
) -> None:
    results = run_scaffold_checks(crate, env={**env, "FAIL_CHECK": "1", "FAIL_FMT": "1"})
    check, fmt = results[0], results[1]
    assert not check.ok
    assert check.detail == "expected cargo check to pass, got error: could not compile api"
    assert not fmt.ok
    assert fmt.detail == "expected formatted sources, got 2 unformatted hunks"


def test_failed_check_quotes_the_first_compiler_error_with_its_place(
    crate: Path, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "check.jsonl"
    missing = "cannot find value `x` in this scope"
    lines = [
        warning("unused import: `std::fmt`"),
        error(missing, "E0425", "tests/api.rs", 12, 9),
        error(missing, "E0425", "tests/api.rs", 12, 9),  # the same error for a second target
        error("mismatched types", "E0308", "tests/blob.rs", 40, 17),
        warning("aborting due to 2 previous errors", span=False, level="error"),
        '{"reason": "build-finished", "success": false}',
    ]
    out.write_text("\n".join(lines) + "\n")
    check = run_scaffold_checks(crate, env={**env, "FAIL_CHECK": "1", "CHECK_OUT": str(out)})[0]
    assert not check.ok
    assert check.detail == (
        "expected cargo check to pass, got 2 errors (1 warning); first: "
        "error[E0425]: cannot find value `x` in this scope at tests/api.rs:12:9"
    )


def test_missing_dockerfile_fails_only_that_check(crate: Path, env: dict[str, str]) -> None:
    (crate / "Dockerfile").unlink()
    results = run_scaffold_checks(crate, env=env)
    assert [r.ok for r in results] == [True, True, True, False]


def test_without_cargo_the_cargo_checks_are_skipped(crate: Path, tmp_path: Path) -> None:
    results = run_scaffold_checks(crate, env={"PATH": str(tmp_path / "empty")})
    assert [(r.skipped, r.ok) for r in results[:3]] == [(True, True)] * 3
    assert results[0].detail == "skipped: cargo not on PATH"
    assert not results[3].skipped


@pytest.mark.parametrize("with_dir", [False, True])
def test_without_a_crate_everything_is_skipped(tmp_path: Path, *, with_dir: bool) -> None:
    results = run_scaffold_checks(tmp_path if with_dir else None, env={})
    assert all(r.skipped and r.ok for r in results)
    assert ("Cargo.toml" in results[0].detail) is with_dir


def test_timeout_is_a_failed_check(crate: Path, env: dict[str, str], tmp_path: Path) -> None:
    slow = tmp_path / "bin" / "cargo"
    slow.write_text("#!/bin/sh\nexec sleep 5\n")
    results = run_scaffold_checks(crate, env=env, timeout=0.2)
    assert results[0].detail == "expected cargo check to pass, got no result within 0.2s"
    assert not any(r.ok for r in results[:3])


def test_passing_check_counts_warnings(crate: Path, env: dict[str, str], tmp_path: Path) -> None:
    assert (
        run_scaffold_checks(crate, env=env)[0].detail == "cargo check passes (0 errors, 0 warnings)"
    )


def test_count_warnings_ignores_summaries_and_noise() -> None:
    text = "\n".join([warning("a"), warning("3 warnings emitted", span=False), "{", "[]"])
    assert count_warnings(text) == 1
    assert count_warnings(f"{warning('a')}\n{warning('a')}\n{warning('b')}") == 2


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not installed")
def test_real_cargo_on_a_tiny_crate(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        '[package]\nname = "tiny"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / "src" / "main.rs").write_text("fn unused() {}\n\nfn main() {}\n")
    (root / "Dockerfile").write_text("FROM scratch\n")
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp_path / "target")}
    results = run_scaffold_checks(root, env=env, timeout=300)
    assert [r.ok for r in results] == [True, True, True, True], [r.detail for r in results]
    assert results[2].detail == "cargo clippy passes (1 warning)"


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not installed")
def test_real_cargo_quotes_the_first_error_in_test_code(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        '[package]\nname = "broken"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / "src" / "main.rs").write_text(
        "fn main() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n"
        "    fn t() {\n        let _ = missing_value;\n    }\n}\n"
    )
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp_path / "target")}
    check = run_scaffold_checks(root, env=env, timeout=300)[0]
    assert not check.ok
    assert check.detail == (
        "expected cargo check to pass, got 1 error (0 warnings); first: "
        "error[E0425]: cannot find value `missing_value` in this scope at src/main.rs:7:17"
    )
