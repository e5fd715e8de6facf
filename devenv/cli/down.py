"""`devenv down`: remove the containers; the data only with --volumes, confirmed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from devenv.cli.options import JsonOpt, ProjectOpt, console, options


def down(
    ctx: typer.Context,
    project: ProjectOpt = None,
    volumes: Annotated[
        bool, typer.Option("--volumes", "-v", help="Also delete the data volumes.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before deleting data.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop and remove the containers; data volumes are kept unless --volumes."""
    from devenv import app as core
    from devenv.errors import RefusedError

    out = console(ctx)
    opts = options(ctx, project, None)
    if volumes and not yes:
        if not sys.stdin.isatty():
            raise RefusedError(
                f"`down --volumes` deletes the data of project {opts.project}",
                hint="add --yes to confirm",
            )
        typer.confirm(f"Delete all data (Postgres, buckets) of project {opts.project}?", abort=True)
    result = core.down(opts, volumes=volumes, progress=out.progress)
    if as_json:
        out.json(result.__dict__)
        return
    out.line(f"Removed {len(result.removed)} container(s): {', '.join(result.removed) or 'none'}.")
    if result.volumes_removed:
        out.line(f"Deleted volumes: {', '.join(result.volumes_removed)}.")
    elif result.volumes_kept:
        out.line(f"Kept volumes (data safe): {', '.join(result.volumes_kept)}.")


def register(app: typer.Typer) -> None:
    app.command()(down)
