"""The pure layers import none of the heavy adapters, so `devenv --help` stays fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PURE = [
    "devenv.checks.ids",
    "devenv.phases.registry",
    "devenv.phases.evaluate",
    "devenv.report.json_report",
    "devenv.report.table",
    "devenv.report.markdown",
    "devenv.checks.contract",
    "devenv.checks.spec",
    "devenv.checks.engine",
    "devenv.checks.services",
    "devenv.checks.scaffold",
    "devenv.checks.junit",
]
HEAVY = ["docker", "httpx", "psycopg", "boto3", "rich", "typer"]


def test_pure_modules_do_not_import_heavy_libraries() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {PURE!r}: importlib.import_module(name)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONPATH": str(root)},
    )
    assert done.stdout.strip() == ""
