"""The devenv command line: the app, the command modules it registers, the one error boundary.

Each command (or group) lives in its own module under devenv/cli/ with a `register(app)`;
adding a command is adding its name and module to COMMANDS. A run registers only the module
of the command it was asked for (building every command's options costs a no-op `up` about
15 ms); help, a bare `devenv`, shell completion and an unknown word get them all.

Every way out is one line and a documented exit code: a handled error (DevenvError) or an
interrupt its own, a usage error 2 (click's, said our way), a bug INTERNAL_ERROR with its
traceback in a log file.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from devenv.cli.options import COMMON, Invocation, add_common_options
from devenv.console import Console
from devenv.errors import Handled, Interrupted, UsageError

# command name -> the module under devenv/cli/ that registers it; `devenv --help` lists the
# commands in this order
COMMANDS = {
    "up": "up", "restart": "up", "down": "down", "status": "status", "ls": "ls",
    "logs": "logs", "check": "check", "report": "report", "config": "config",
    "profiles": "config", "init": "init", "images": "images", "ui": "ui",
    "snapshot": "snapshot", "reset": "snapshot", "watch": "watch",
}  # fmt: skip
# the common options that take a value: the word after them is not the command
_VALUED = {name for names, _store, attrs in COMMON if not attrs.get("is_flag") for name in names}


def _version(value: bool) -> None:
    if value:
        from devenv import __version__

        typer.echo(f"devenv {__version__}")
        raise typer.Exit


def command_word(argv: Sequence[str]) -> str | None:
    """The command asked for: the first word that is neither an option nor an option's value."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_app(argv: Sequence[str] = ()) -> typer.Typer:
    """The typer app with the module of argv's command registered, or every module."""
    app = typer.Typer(
        name="devenv",
        help="One command to a verified local Ignition stack, and which phases can proceed.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _group(
        version: Annotated[
            bool,
            typer.Option(
                "--version", callback=_version, is_eager=True, help="Print the version and exit."
            ),
        ] = False,
    ) -> None:
        """A group even when one command is registered: `devenv up`, never `devenv`."""

    word = command_word(argv)
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


def main(argv: Sequence[str], console: Console) -> int:
    """Parse and run one command; handled errors are raised, a usage error as UsageError."""
    command = typer.main.get_command(build_app(argv))
    add_common_options(command)
    try:
        result: Any = command.main(
            args=list(argv),
            prog_name="devenv",
            standalone_mode=False,
            obj=Invocation(console),
        )
    except typer.Abort as exc:  # a prompt's Ctrl-D
        raise Interrupted("stopped at a prompt", hint="run the command again") from exc
    except typer.TyperException as exc:  # click's own errors: usage, bad values
        from typer._click.exceptions import NoArgsIsHelpError

        if isinstance(exc, NoArgsIsHelpError):  # a bare `devenv` (or group): the help
            exc.show()
            return 2
        where = getattr(getattr(exc, "ctx", None), "command_path", "devenv")
        raise UsageError(
            " ".join(exc.format_message().split()),
            hint=f"see `{where} --help`",
        ) from exc
    return result if isinstance(result, int) else 0


def run(argv: Sequence[str] | None = None) -> None:
    """Console entry point: the one place that turns every failure into one line + exit code."""
    import signal

    args = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    signal.signal(signal.SIGINT, _interrupt)
    try:
        code = main(args, console)
    except Handled as exc:  # a DevenvError, or the Interrupted `_interrupt` raised
        console.error(exc)
        code = exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug becomes a line and a log file
        from devenv.cli.crash import report

        code = report(console, exc, args)
    sys.exit(code)
