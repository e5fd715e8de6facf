"""`devenv up`: converge and verify, or (--dry-run) print the plan and touch nothing."""

from __future__ import annotations

from typing import Annotated

import typer

from devenv.cli.options import JsonOpt, PullOpt, complete_service, console, invocation, options


def up(
    ctx: typer.Context,
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
            hidden=True,
            help="Deprecated: --set seed.allow_protected=true --set seed.enabled=true.",
        ),
    ] = False,
    pull: PullOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring the stack up and wait until every service is verified healthy."""
    from devenv import app as core
    from devenv.report.data import dry_run_data, up_data

    out = console(ctx)
    if seed_protected:
        _seed_protected(ctx)
    opts = options(ctx, pull=pull)
    if dry_run:
        plan = core.plan_up(opts, strict_ports=strict_ports, secrets=out.secrets).plan
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


def _seed_protected(ctx: typer.Context) -> None:
    """The old flag, said once as the profile keys it stands for (explicit --set wins)."""
    keys = ["seed.allow_protected=true", "seed.enabled=true"]
    run = invocation(ctx)
    run.sets[:0] = keys
    run.console.progress(
        "note: --seed-protected is deprecated; it means --set "
        + " --set ".join(keys)
        + " (seed.allow_protected in a profile's [seed] table does the same)"
    )


def restart(
    ctx: typer.Context,
    service: Annotated[
        str,
        typer.Argument(help="postgres, objectstore or backend", autocompletion=complete_service),
    ],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
) -> None:
    """Restart one local service and wait until it answers again."""
    from devenv import app as core

    out = console(ctx)
    opts = options(ctx)
    result = core.restart(
        opts, service, progress=out.progress, timeout=timeout, secrets=out.secrets
    )
    for s in result.services:
        out.line(f"  {s.service:<12} {s.action:<10} healthy  {s.detail}")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(restart)
