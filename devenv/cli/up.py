"""`devenv up`: converge and verify, or (--dry-run) print the plan and touch nothing."""

from __future__ import annotations

from typing import Annotated

import typer

from devenv.cli.options import JsonOpt, ProfileOpt, ProjectOpt, PullOpt, SetOpt, console, options


def up(
    ctx: typer.Context,
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print every step with its cause; write nothing, change nothing."
        ),
    ] = False,
    strict_ports: Annotated[
        bool, typer.Option("--strict-ports", help="Fail instead of falling back to a free port.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
    seed_protected: Annotated[
        bool,
        typer.Option(
            "--seed-protected",
            help="Create the bucket and seed the dev user even on protected providers.",
        ),
    ] = False,
    pull: PullOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring the stack up and wait until every service is verified healthy."""
    from devenv import app as core
    from devenv.report.data import dry_run_data, up_data

    out = console(ctx)
    opts = options(ctx, project, profile, sets, pull)
    if dry_run:
        plan = core.plan_up(
            opts, strict_ports=strict_ports, seed_protected=seed_protected, secrets=out.secrets
        ).plan
        for note in plan.notes:
            out.progress(note)
        if as_json:
            out.json(dry_run_data(plan))
        else:
            out.line(plan.text())
        if plan.error is not None:
            raise plan.error
        return
    result = core.up(
        opts,
        progress=out.progress,
        strict_ports=strict_ports,
        timeout=timeout,
        seed_protected=seed_protected,
        secrets=out.secrets,
    )
    if as_json:
        out.json(up_data(result))
        return
    if result.noop:
        out.line(
            f"Nothing to do: {result.project} is up to date and healthy ({result.seconds:.2f}s)."
        )
    for s in result.services:
        out.line(f"  {s.service:<12} {s.action:<10} healthy  {s.detail}")
    if not result.noop:
        out.line(
            f"Stack {result.project} is up (profile {result.profile}) in {result.seconds:.2f}s."
        )


def restart(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="postgres, objectstore or backend")],
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
) -> None:
    """Restart one local service and wait until it answers again."""
    from devenv import app as core

    out = console(ctx)
    opts = options(ctx, project, profile, sets)
    result = core.restart(
        opts, service, progress=out.progress, timeout=timeout, secrets=out.secrets
    )
    for s in result.services:
        out.line(f"  {s.service:<12} {s.action:<10} healthy  {s.detail}")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(restart)
