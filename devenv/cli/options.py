"""What every command shares: the common options, the Options they make, and the console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer

from devenv.console import Console
from devenv.errors import ConfigError

if TYPE_CHECKING:
    from devenv.config.load import Options
    from devenv.model import PullPolicy

PULL_CHOICES = ("missing", "always", "never")

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
PullOpt = Annotated[
    str | None,
    typer.Option(
        "--pull",
        help="When to pull images: missing (default: only what the engine lacks), always, "
        "never (build the local stand-ins instead). Overrides compose's pull_policy.",
        metavar="missing|always|never",
    ),
]
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
    pull: str | None = None,
) -> Options:
    """The command's Options; the environment's secrets join the console's registry."""
    from devenv.config.load import Options, default_project_name, find_root

    root = find_root()
    overrides: dict[str, str] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r} has no '='", hint="write --set KEY=VALUE")
        overrides[key.strip()] = value
    if pull is not None and pull not in PULL_CHOICES:
        raise ConfigError(
            f"--pull {pull!r} is not one of {', '.join(PULL_CHOICES)}",
            hint="--pull missing (the default), always or never",
        )
    found = Options(
        root=root,
        project=project or default_project_name(root),
        profile=profile,
        overrides=overrides,
        pull=cast("PullPolicy | None", pull),
    )
    console(ctx).secrets.add_environ(found.environ)
    return found
