"""`devenv status`: each service's provider, state, health and URL; exit 1 when one is not
healthy (after printing)."""

from __future__ import annotations

import typer

from devenv.cli.options import JsonOpt, SecretsOpt, console, options


def status(
    ctx: typer.Context,
    show_secrets: SecretsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show each service: provider, state, health, image and URL. Exits 1 if one is unhealthy."""
    from devenv import app as core
    from devenv.errors import UnhealthyError
    from devenv.report.data import status_data

    out = console(ctx)
    out.secrets.enabled = not show_secrets
    opts = options(ctx)
    result = core.status(opts, show_secrets=show_secrets, secrets=out.secrets)
    if as_json:
        out.json(status_data(result))
    else:
        out.line(f"project {result.project}, profile {result.profile}")
        out.table(
            [("SERVICE", "PROVIDER", "STATE", "HEALTHY", "URL")]
            + [
                (s.name, s.provider, s.state, "yes" if s.healthy else "no", s.url)
                for s in result.services
            ]
        )
        for s in result.services:
            if not s.healthy and s.detail:
                out.line(f"  {s.name}: {s.detail}")
            if s.env:
                shown = ", ".join(f"{k}={v}" for k, v in s.env.items())
                out.line(f"  {s.name} extra env: {shown}")
    if result.unhealthy:
        first = result.unhealthy[0]
        said = f"{first.name}: {first.detail or first.state}"
        more = f" (and {len(result.unhealthy) - 1} more)" if len(result.unhealthy) > 1 else ""
        raise UnhealthyError(said + more, hint="`devenv up` starts what is missing")


def register(app: typer.Typer) -> None:
    app.command()(status)
