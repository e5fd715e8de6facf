"""`devenv images build`: build the stand-in images ahead of time."""

from __future__ import annotations

import typer

from devenv.cli.options import console, options

images = typer.Typer(help="Build the local stand-in images ahead of time.", no_args_is_help=True)


@images.command("build")
def build(ctx: typer.Context) -> None:
    """Build every missing stand-in image (base, postgres, objectstore, backend)."""
    from devenv import app as core

    out = console(ctx)
    for line in core.build_images(options(ctx), progress=out.progress):
        out.line(line)


def register(app: typer.Typer) -> None:
    app.add_typer(images, name="images")
