"""`devenv ls`: every devenv stack on this engine, from any directory."""

from __future__ import annotations

import time

import typer

from devenv.cli.options import JsonOpt, console, invocation


def ls(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every devenv stack on this engine: project, profile, checkout, health, ports, age.

    --project NAME shows that project only."""
    from devenv.config.load import check_project_name
    from devenv.stacks import age_text, list_stacks, ls_data

    out = console(ctx)
    wanted = invocation(ctx).project
    if wanted is not None:
        check_project_name(wanted)
    rows = list_stacks(project=wanted, secrets=out.secrets)
    now = time.time()
    if as_json:
        out.json(ls_data(rows, now))
        return
    if not rows:
        out.line("no devenv stacks on this engine" + (f" named {wanted}" if wanted else ""))
        return
    table = [("PROJECT", "PROFILE", "STATE", "HEALTH", "PORTS", "AGE", "CHECKOUT")]
    for r in rows:
        known = [s for s in r.services if s.healthy is not None]
        health = (
            f"{sum(1 for s in known if s.healthy)}/{len(known)} healthy" if known else "unknown"
        )
        ports = " ".join(f"{name}:{port}" for name, port in r.ports.items()) or "-"
        table.append(
            (r.project, r.profile or "?", r.state, health, ports, age_text(r.age(now)),
             r.checkout or "?")
        )  # fmt: skip
    out.table(table)
    for r in rows:
        for s in r.services:
            if s.healthy is False:
                out.line(f"  {r.project} {s.name}: {s.detail}")
        if r.note and not any(s.healthy is False for s in r.services):
            out.line(f"  {r.project}: {r.note}")


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
