"""`devenv logs`: one service's log lines or all, secrets redacted; -f follows."""

from __future__ import annotations

from typing import Annotated

import typer

from devenv.cli.options import complete_service, console, options


def logs(
    ctx: typer.Context,
    service: Annotated[
        str | None,
        typer.Argument(help="postgres, objectstore or backend", autocompletion=complete_service),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    tail: Annotated[int, typer.Option(min=0, help="Lines per service.")] = 100,
) -> None:
    """Print (or follow) the logs of one service or all."""
    from devenv import app as core

    out = console(ctx)
    opts = options(ctx)
    for line in core.logs(opts, service, follow=follow, tail=tail, secrets=out.secrets):
        out.line(line.rstrip("\n"), flush=follow)


def register(app: typer.Typer) -> None:
    app.command()(logs)
