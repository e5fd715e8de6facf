"""`devenv config` and `devenv profiles`: the resolved profile with each value's source, and
the profiles there are."""

from __future__ import annotations

import typer

from devenv.cli.options import JsonOpt, console, options


def config(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """Print the resolved configuration with each value's source layer; secrets masked.

    The compose file is read and checked as `up` reads it: a broken one fails here too."""
    from devenv.config.compose import display_path
    from devenv.config.load import load_config
    from devenv.config.profiles import describe

    out = console(ctx)
    opts = options(ctx)
    config = load_config(opts)
    prof = config.profile
    out.secrets.add(*prof.secrets())
    out.debug(f"compose file {display_path(config.project.compose_file, opts.root)}")
    out.debug(f"profile {prof.name} from {prof.path or 'built-in'}")
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
    """List the available profiles (the project's profiles/, else devenv's packaged ones)."""
    from devenv.config.profiles import list_profiles

    out = console(ctx)
    opts = options(ctx)
    found = list_profiles(opts.root)
    if as_json:
        out.json(
            {
                "profiles": [
                    {"name": n, "path": str(p) if p else None, "description": d}
                    for n, p, d in found
                ]
            }
        )
        return
    out.table([("NAME", "DESCRIPTION"), *((n, d) for n, _p, d in found)])


def register(app: typer.Typer) -> None:
    app.command("config")(config)
    app.command()(profiles)
