"""The dashboard's pure parts stay pure, and `devenv --help` does not load the web stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = ["devenv.ui.svg", "devenv.ui.guard", "devenv.ui.watch", "devenv.ui.views"]
HEAVY = ["docker", "httpx", "psycopg", "boto3", "typer", "starlette", "uvicorn", "jinja2"]
WEB = ["starlette", "uvicorn", "jinja2", "sse_starlette", "anyio"]


def loaded_after(code: str, names: list[str]) -> list[str]:
    script = f"import sys\n{code}\nprint(','.join(m for m in {names!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    return [m for m in done.stdout.strip().split(",") if m]


def test_pure_modules_import_no_adapter_or_web_library() -> None:
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in PURE)
    assert loaded_after(code, HEAVY) == []


def test_the_cli_registers_ui_without_loading_the_web_stack() -> None:
    code = (
        "from devenv.cli.main import build_app\n"
        "import typer.main\n"
        "assert 'ui' in typer.main.get_command(build_app()).commands\n"
    )
    assert loaded_after(code, WEB) == []
