"""The dashboard's pure parts stay pure, and `devenv --help` does not load the web stack."""

from __future__ import annotations

from tests.unit.imports import importing, loaded_after

PURE = ["devenv.ui.svg", "devenv.ui.guard", "devenv.ui.watch", "devenv.ui.views"]
HEAVY = ["docker", "httpx", "psycopg", "boto3", "typer", "starlette", "uvicorn", "jinja2"]
WEB = ["starlette", "uvicorn", "jinja2", "sse_starlette", "anyio"]


def test_pure_modules_import_no_adapter_or_web_library() -> None:
    assert loaded_after(importing(PURE), HEAVY) == []


def test_the_cli_registers_ui_without_loading_the_web_stack() -> None:
    code = (
        "from devenv.cli.main import build_app\n"
        "import typer.main\n"
        "assert 'ui' in typer.main.get_command(build_app()).commands\n"
    )
    assert loaded_after(code, WEB) == []
