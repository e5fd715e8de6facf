"""`devenv down`: remove the containers; the data only with --volumes, confirmed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from devenv.cli.options import JsonOpt, console, options


def down(
    ctx: typer.Context,
    volumes: Annotated[
        bool,
        typer.Option("--volumes", "-v", help="Also delete the data volumes and the snapshots."),
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
    opts = options(ctx)
    if volumes and not yes and not _confirmed(opts.project):
        # the same refusal whether nobody could answer (no terminal) or the answer was no
        raise RefusedError(
            f"`down --volumes` deletes the data of project {opts.project} and its snapshots; "
            "not confirmed, nothing was removed",
            hint="answer y, or add --yes",
        )
    result = core.down(opts, volumes=volumes, progress=out.progress)
    if as_json:
        out.json(result.__dict__)
        return
    out.line(f"Removed {len(result.removed)} container(s): {', '.join(result.removed) or 'none'}.")
    if result.volumes_removed:
        out.line(f"Deleted volumes: {', '.join(result.volumes_removed)}.")
    if result.snapshots_removed:
        out.line(f"Deleted snapshots: {', '.join(result.snapshots_removed)}.")
    elif result.volumes_kept:
        out.line(f"Kept volumes (data safe): {', '.join(result.volumes_kept)}.")


def _confirmed(project: str) -> bool:
    """Asked on a terminal only; no, Ctrl-D or no terminal at all is a no."""
    if not sys.stdin.isatty():
        return False
    try:
        return typer.confirm(
            f"Delete all data (Postgres, buckets) of project {project}, and its snapshots "
            "(they are of that data)?",
            default=False,
        )
    except typer.Abort:
        return False


def register(app: typer.Typer) -> None:
    app.command()(down)
