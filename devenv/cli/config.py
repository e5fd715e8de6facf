"""`devenv config` and `devenv profiles`: the resolved profile with each value's source, and
the profiles there are."""

from __future__ import annotations

import typer

from devenv.cli.options import JsonOpt, ProfileOpt, ProjectOpt, SetOpt, console, options


def config(
    ctx: typer.Context,
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the resolved configuration with each value's source layer; secrets masked."""
    from devenv.config.profiles import describe, resolve_profile

    out = console(ctx)
    opts = options(ctx, project, profile, sets)
    prof = resolve_profile(
        opts.root, opts.profile, environ=opts.environ, cli_overrides=opts.overrides
    )
    out.secrets.add(*prof.secrets())
    rows = describe(prof)
    if as_json:
        out.json(
            {
                "profile": prof.name,
                "dev_bypass": prof.dev_bypass,
                "protected": list(prof.protected_in_play),
                "values": [{"key": k, "value": v, "source": s} for k, v, s in rows],
            }
        )
        return
    out.line(f"profile {prof.name}  dev_bypass={str(prof.dev_bypass).lower()}")
    out.table([("KEY", "VALUE", "SOURCE"), *rows])


def profiles(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the available profiles."""
    from devenv.config.defaults import find_root
    from devenv.config.profiles import list_profiles

    out = console(ctx)
    found = list_profiles(find_root())
    if as_json:
        out.json(
            [{"name": n, "path": str(p) if p else None, "description": d} for n, p, d in found]
        )
        return
    out.table([("NAME", "DESCRIPTION"), *((n, d) for n, _p, d in found)])


def register(app: typer.Typer) -> None:
    app.command("config")(config)
    app.command()(profiles)
