"""`devenv snapshot save|restore|list|rm` and `devenv reset`: thin commands over devenv.snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from devenv.cli.options import JsonOpt, console, options

if TYPE_CHECKING:
    from devenv.console import Console
    from devenv.snapshot.service import RestoreResult, SaveResult

NameArg = Annotated[str, typer.Argument(help="Snapshot name: a-z, 0-9, '-', '_'.")]
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


def _say_saved(out: Console, result: SaveResult, as_json: bool) -> None:
    if as_json:
        out.json(_saved(result))
        return
    m = result.manifest
    verb = "Replaced" if result.replaced else "Saved"
    what = "the golden snapshot" if m.golden else f"snapshot {m.name}"
    out.line(
        f"{verb} {what} of project {m.project}: database {_mb(m.database_bytes)}, "
        f"{len(m.objects)} object(s) ({_mb(m.object_bytes)}) in {result.seconds:.2f}s."
    )


def _say_restored(out: Console, result: RestoreResult, as_json: bool) -> None:
    if as_json:
        out.json(_restored(result))
        return
    m = result.manifest
    for line in result.ready:
        out.line(f"  {line}")
    what = "the golden state" if m.golden else f"snapshot {m.name} (taken {m.created_at})"
    out.line(
        f"Restored {what} of project {m.project}: {result.written} object(s) written, "
        f"{result.deleted} removed; every probe passed in {result.seconds:.2f}s: done."
    )


def save(
    ctx: typer.Context,
    name: NameArg,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a snapshot of that name.")
    ] = False,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Save the database and the bucket as NAME (the backend is stopped for a moment)."""
    from devenv.snapshot import service

    out = console(ctx)
    opts = options(ctx)
    result = service.save(
        opts, name, force=force, progress=out.progress, timeout=timeout, secrets=out.secrets
    )
    _say_saved(out, result, as_json)


def restore(
    ctx: typer.Context,
    name: NameArg,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Restore NAME: backend stopped, database and bucket replaced, done once probes pass."""
    from devenv.snapshot import service

    out = console(ctx)
    opts = options(ctx)
    result = service.restore(
        opts, name, progress=out.progress, timeout=timeout, secrets=out.secrets
    )
    _say_restored(out, result, as_json)


def list_(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """List the project's snapshots, the golden one first."""
    from devenv.snapshot import service
    from devenv.snapshot.model import describe_migrations

    out = console(ctx)
    opts = options(ctx)
    rows = service.list_snapshots(opts, secrets=out.secrets)
    if as_json:
        out.json({"project": opts.project, "snapshots": [r.to_json() for r in rows]})
        return
    if not rows:
        out.line(f"project {opts.project} has no snapshots")
        return
    out.table(
        [("NAME", "CREATED", "POSTGRES", "MIGRATIONS", "DATABASE", "OBJECTS", "STATE")]
        + [
            (
                r.manifest.name,
                r.manifest.created_at,
                r.manifest.pg_version,
                describe_migrations(r.manifest.migrations),
                _mb(r.manifest.database_bytes),
                f"{len(r.manifest.objects)} ({_mb(r.manifest.object_bytes)})",
                r.state,
            )
            for r in rows
        ]
    )


def rm(
    ctx: typer.Context,
    name: NameArg,
) -> None:
    """Remove snapshot NAME (its database and the objects no other snapshot holds)."""
    from devenv.snapshot import service

    out = console(ctx)
    opts = options(ctx)
    removed = service.remove(opts, name, secrets=out.secrets)
    out.line(f"Removed snapshot {removed.name} of project {removed.project}.")


def reset(
    ctx: typer.Context,
    golden_refresh: Annotated[
        bool,
        typer.Option("--golden-refresh", help="Retake the golden state from the current one."),
    ] = False,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Back to the golden state: the stack as its first healthy `up` left it."""
    from devenv.snapshot import service

    out = console(ctx)
    opts = options(ctx)
    result = service.reset(
        opts,
        golden_refresh=golden_refresh,
        progress=out.progress,
        timeout=timeout,
        secrets=out.secrets,
    )
    if isinstance(result, service.SaveResult):
        _say_saved(out, result, as_json)
    else:
        _say_restored(out, result, as_json)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Save and restore the project's database and bucket together.", no_args_is_help=True
    )
    group.command("save")(save)
    group.command("restore")(restore)
    group.command("list")(list_)
    group.command("rm")(rm)
    app.add_typer(group, name="snapshot")
    app.command()(reset)
