"""The backend crate's own quality gates: formatted, clippy-clean, and its tests passing
against a real Postgres and S3 server (the shared stack's), with no test skipping itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devenv.images.build import cargo_target_dir
from tests.integration.conftest import REPO, Stack

BACKEND = REPO / "backend"
CARGO_TIMEOUT = 1800.0  # a cold debug build on two busy cores is slow


def _target_dir() -> Path:
    """The target dir `devenv images build` uses for this backend (warm after a build)."""
    return cargo_target_dir(BACKEND, BACKEND)


def _cargo(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not on PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IGNITION_TEST_")}
    env["CARGO_TARGET_DIR"] = str(_target_dir())
    env.update(extra_env or {})
    return subprocess.run(
        [cargo, *args],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=CARGO_TIMEOUT,
        check=False,
    )


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    out = (proc.stdout + "\n" + proc.stderr).strip().splitlines()
    return "\n".join(out[-lines:])


def test_cargo_fmt_check() -> None:
    proc = _cargo("fmt", "--check")
    assert proc.returncode == 0, _tail(proc)
    assert "Diff in" not in proc.stdout


def test_cargo_clippy_denies_warnings() -> None:
    proc = _cargo("clippy", "--all-targets", "--locked", "--", "-D", "warnings")
    assert proc.returncode == 0, _tail(proc)
    assert "warning:" not in proc.stderr, _tail(proc)


def test_cargo_test_against_the_shared_stack(shared_stack: Stack) -> None:
    storage = shared_stack.storage()
    env = {
        "IGNITION_TEST_DATABASE_URL": shared_stack.database_url(),
        "IGNITION_TEST_STORAGE_ENDPOINT": storage.endpoint,
        "IGNITION_TEST_STORAGE_BUCKET": storage.bucket,
        "IGNITION_TEST_STORAGE_ACCESS_KEY_ID": storage.access_key,
        "IGNITION_TEST_STORAGE_SECRET_ACCESS_KEY": storage.secret_key,
        "IGNITION_TEST_STORAGE_REGION": storage.region,
    }
    proc = _cargo("test", "--locked", extra_env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, _tail(proc, 120)
    assert "SKIPPED" not in output, _tail(proc, 120)
    # the integration target really ran its tests (not zero of them)
    assert "Running tests/integration.rs" in output, _tail(proc)
    assert "test blob_round_trip ... ok" in output, _tail(proc)
    assert "test auth_with_bypass_on_and_off ... ok" in output, _tail(proc)
    ran = [line for line in output.splitlines() if line.startswith("test result: ok.")]
    assert ran, _tail(proc)
    assert any(not line.startswith("test result: ok. 0 passed") for line in ran), ran
