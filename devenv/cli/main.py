"""The devenv command line: the app, the command modules it registers, the one error boundary.

Each command (or group) lives in its own module under devenv/cli/ with a `register(app)`;
adding a command is adding its name and module to COMMANDS. A run registers only the module
of the command it was asked for (building every command's options costs a no-op `up` about
15 ms); help, a bare `devenv` and an unknown word get them all.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from devenv.console import Console
from devenv.errors import Handled, Interrupted

# command name -> the module under devenv/cli/ that registers it; `devenv --help` lists the
# commands in this order
COMMANDS = {
    "up": "up", "restart": "up", "down": "down", "status": "status", "logs": "logs",
    "check": "check", "report": "report", "config": "config", "profiles": "config",
    "images": "images", "ui": "ui", "snapshot": "snapshot", "reset": "snapshot",
    "watch": "watch",
}  # fmt: skip


def build_app(argv: Sequence[str] = ()) -> typer.Typer:
    """The typer app with the module of argv's command registered, or every module."""
    app = typer.Typer(
        name="devenv",
        help="One command to a verified local Ignition stack, and which phases can proceed.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _group() -> None:
        """A group even when one command is registered: `devenv up`, never `devenv`."""

    word = next((a for a in argv if not a.startswith("-")), None)
    modules = [COMMANDS[word]] if word in COMMANDS else dict.fromkeys(COMMANDS.values())
    for name in modules:
        importlib.import_module(f"devenv.cli.{name}").register(app)
    return app


def _interrupt(signum: int, _frame: object) -> None:
    import signal

    raise Interrupted(
        f"stopped by {signal.Signals(signum).name}",
        hint="run `devenv up` again: it adopts or replaces whatever was half made",
    )


def run() -> None:
    """Console entry point: the one place that turns handled errors into one line + exit code."""
    import signal

    console = Console()
    signal.signal(signal.SIGINT, _interrupt)
    try:
        build_app(sys.argv[1:])(obj=console)
    except Handled as exc:  # a DevenvError, or the Interrupted `_interrupt` raised
        console.error(exc)
        sys.exit(exc.exit_code)
