"""`devenv watch`: serve and verify each save of the backend checkout, without building images."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from devenv.cli.options import console, options
from devenv.console import versioned


def watch(
    ctx: typer.Context,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for readiness (the first up, each restart).")
    ] = 60.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per cycle on stdout.")
    ] = False,
) -> None:
    """Bring the stack up, then rebuild, restart and check the backend on every save.

    Ctrl-C stops watching and leaves the stack running on the last good build."""
    import signal

    from devenv import app as core
    from devenv.watch.cycle import Cycle, cycle_data, line

    out = console(ctx)
    opts = options(ctx)
    # a supervisor's stop ends watching as Ctrl-C does (the handler `run` installed)
    signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))

    def report(cycle: Cycle) -> None:
        if as_json:
            data = versioned(out.secrets.redact_data(cycle_data(cycle)))
            out.line(json.dumps(data, ensure_ascii=False), flush=True)
            return
        out.line(line(cycle), flush=True)
        for detail in cycle.details:
            out.line(f"    {detail}", flush=True)

    result = core.watch(
        opts, report=report, progress=out.progress, timeout=timeout, secrets=out.secrets
    )
    kept = (
        f"source {result.serving[:12]} ({result.cargo_profile} build), which `devenv up` keeps"
        if result.serving
        else "its image"
    )
    out.progress(
        f"[watch] stopped after {result.cycles} cycle(s); the backend keeps serving {kept}"
    )


def register(app: typer.Typer) -> None:
    app.command()(watch)
