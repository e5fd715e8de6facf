"""The devenv command line: the app, the command modules it registers, the one error boundary.

Each command (or group) lives in its own module under devenv/cli/ with a `register(app)`;
adding a command module is adding its name to COMMANDS.
"""

from __future__ import annotations

import importlib
import sys

import typer

from devenv.console import Console
from devenv.errors import DevenvError, Interrupted

COMMANDS = (
    "up", "down", "status", "logs", "check", "report", "config", "images", "ui", "snapshot",
    "watch",
)  # fmt: skip

app = typer.Typer(
    name="devenv",
    help="One command to a verified local Ignition stack, and which phases can proceed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _name in COMMANDS:
    importlib.import_module(f"devenv.cli.{_name}").register(app)


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted(
        "stopped by SIGINT",
        hint="run `devenv up` again: it adopts or replaces whatever was half made",
    )


def run() -> None:
    """Console entry point: the one place that turns handled errors into one line + exit code."""
    import signal

    console = Console()
    signal.signal(signal.SIGINT, _interrupt)
    try:
        app(obj=console)
    except DevenvError as exc:
        console.error(exc)
        sys.exit(exc.exit_code)
