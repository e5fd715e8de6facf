"""`devenv images build`: get the images ahead of time, as `up` would."""

from __future__ import annotations

from typing import Annotated

import typer

from devenv.cli.options import PullOpt, console, options

images = typer.Typer(help="Pull or build the stack's images ahead of time.", no_args_is_help=True)


@images.command("build")
def build(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="base, postgres, objectstore or backend (default: every service)."),
    ] = None,
    pull: PullOpt = None,
) -> None:
    """Get every missing image as `up` would: pulled when the registry has it, else built
    from the local stand-in recipe (the base first). One line per image says which and why."""
    from devenv import app as core

    out = console(ctx)
    opts = options(ctx, pull=pull)
    for line in core.build_images(opts, progress=out.progress, only=tuple(targets or ())):
        out.line(line)


def register(app: typer.Typer) -> None:
    app.add_typer(images, name="images")
