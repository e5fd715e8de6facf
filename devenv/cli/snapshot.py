"""`devenv snapshot save|restore|list|rm` and `devenv reset`: thin commands over devenv.snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from devenv.snapshot.service import RestoreResult, SaveResult

snapshot_app = typer.Typer(
    help="Save and restore the project's database and bucket together.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Snapshot name: a-z, 0-9, '-', '_'.")]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", help="Project name (default: $DEVENV_PROJECT or the dir name)."
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", help="Profile name in profiles/ or a path to a .toml ($DEVENV_PROFILE)."
    ),
]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a profile key.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
TimeoutOpt = Annotated[
    float, typer.Option(help="Seconds to wait for the readiness probes afterwards.")
]


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def _saved(result: SaveResult) -> dict[str, object]:
    m = result.manifest
    return {
        "name": m.name,
        "project": m.project,
        "replaced": result.replaced,
        "seconds": round(result.seconds, 3),
        "database_bytes": m.database_bytes,
        "objects": len(m.objects),
        "object_bytes": m.object_bytes,
    }


def _restored(result: RestoreResult) -> dict[str, object]:
    m = result.manifest
    return {
        "name": m.name,
        "project": m.project,
        "seconds": round(result.seconds, 3),
        "objects_written": result.written,
        "objects_deleted": result.deleted,
        "ready": list(result.ready),
    }


def _say_saved(result: SaveResult) -> None:
    from devenv.cli import main as cli

    m = result.manifest
    verb = "Replaced" if result.replaced else "Saved"
    what = "the golden snapshot" if m.golden else f"snapshot {m.name}"
    cli._emit(
        f"{verb} {what} of project {m.project}: database {_mb(m.database_bytes)}, "
        f"{len(m.objects)} object(s) ({_mb(m.object_bytes)}) in {result.seconds:.2f}s."
    )


def _say_restored(result: RestoreResult) -> None:
    from devenv.cli import main as cli

    m = result.manifest
    for line in result.ready:
        cli._emit(f"  {line}")
    what = "the golden state" if m.golden else f"snapshot {m.name} (taken {m.created_at})"
    cli._emit(
        f"Restored {what} of project {m.project}: {result.written} object(s) written, "
        f"{result.deleted} removed; every probe passed in {result.seconds:.2f}s: done."
    )


@snapshot_app.command("save")
def save(
    name: NameArg,
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a snapshot of that name.")
    ] = False,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Save the database and the bucket as NAME (the backend is stopped for a moment)."""
    from devenv.cli import main as cli
    from devenv.snapshot import service

    options = cli._options(project, profile, sets)
    cli._remember_secrets(options)
    result = service.save(options, name, force=force, progress=cli.progress, timeout=timeout)
    if as_json:
        cli._emit_json(_saved(result))
    else:
        _say_saved(result)


@snapshot_app.command("restore")
def restore(
    name: NameArg,
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Restore NAME: backend stopped, database and bucket replaced, done once probes pass."""
    from devenv.cli import main as cli
    from devenv.snapshot import service

    options = cli._options(project, profile, sets)
    cli._remember_secrets(options)
    result = service.restore(options, name, progress=cli.progress, timeout=timeout)
    if as_json:
        cli._emit_json(_restored(result))
    else:
        _say_restored(result)


@snapshot_app.command("list")
def list_(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the project's snapshots, the golden one first."""
    from devenv.cli import main as cli
    from devenv.snapshot import service
    from devenv.snapshot.model import describe_migrations

    options = cli._options(project, profile, sets)
    rows = service.list_snapshots(options)
    if as_json:
        cli._emit_json({"project": options.project, "snapshots": [r.to_json() for r in rows]})
        return
    if not rows:
        cli._emit(f"project {options.project} has no snapshots")
        return
    table = [("NAME", "CREATED", "POSTGRES", "MIGRATIONS", "DATABASE", "OBJECTS", "STATE")]
    for r in rows:
        m = r.manifest
        table.append(
            (
                m.name,
                m.created_at,
                m.pg_version,
                describe_migrations(m.migrations),
                _mb(m.database_bytes),
                f"{len(m.objects)} ({_mb(m.object_bytes)})",
                r.state,
            )
        )
    cli._emit(cli._table(table))


@snapshot_app.command("rm")
def rm(
    name: NameArg,
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
) -> None:
    """Remove snapshot NAME (its database and the objects no other snapshot holds)."""
    from devenv.cli import main as cli
    from devenv.snapshot import service

    options = cli._options(project, profile, sets)
    removed = service.remove(options, name)
    cli._emit(f"Removed snapshot {removed.name} of project {removed.project}.")


def reset(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    golden_refresh: Annotated[
        bool,
        typer.Option("--golden-refresh", help="Retake the golden state from the current one."),
    ] = False,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Back to the golden state: the stack as its first healthy `up` left it."""
    from devenv.cli import main as cli
    from devenv.snapshot import service

    options = cli._options(project, profile, sets)
    cli._remember_secrets(options)
    result = service.reset(
        options, golden_refresh=golden_refresh, progress=cli.progress, timeout=timeout
    )
    if isinstance(result, service.SaveResult):
        if as_json:
            cli._emit_json(_saved(result))
        else:
            _say_saved(result)
    elif as_json:
        cli._emit_json(_restored(result))
    else:
        _say_restored(result)
