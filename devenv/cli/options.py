"""What every command shares: the common options, the Options they make, and the console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from devenv.console import Console
from devenv.errors import ConfigError

if TYPE_CHECKING:
    from devenv.config.load import Options

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
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a profile key, e.g. services.postgres.url=... (repeatable)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
SecretsOpt = Annotated[bool, typer.Option("--show-secrets", help="Print credentials unmasked.")]


def console(ctx: typer.Context) -> Console:
    """The run's console (made by `run`; a fresh one when the app is invoked another way)."""
    if not isinstance(ctx.obj, Console):
        ctx.obj = Console()
    return ctx.obj


def options(
    ctx: typer.Context,
    project: str | None,
    profile: str | None,
    sets: list[str] | None = None,
) -> Options:
    """The command's Options; the environment's secrets join the console's registry."""
    from devenv.config.defaults import find_root
    from devenv.config.load import Options, default_project_name

    root = find_root()
    overrides: dict[str, str] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r} has no '='", hint="write --set KEY=VALUE")
        overrides[key.strip()] = value
    found = Options(
        root=root,
        project=project or default_project_name(root),
        profile=profile,
        overrides=overrides,
    )
    console(ctx).secrets.add_environ(found.environ)
    return found
