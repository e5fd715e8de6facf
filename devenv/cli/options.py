"""What every command shares: the common options, the Options they make, and the console.

The common options are defined once (COMMON) and attached to the group and to every command
(`add_common_options`), so that each is accepted before or after the command word with the
same meaning and default: `devenv --project x up` is `devenv up --project x`. Given in both
places, the one after the command word wins (`--set`s add up, in order).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from devenv.console import Console

if TYPE_CHECKING:
    from devenv.config.load import Options
    from devenv.model import PullPolicy

PULL_CHOICES = ("missing", "always", "never")

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


@dataclass
class Invocation:
    """One run of the CLI: its console and the common options as given."""

    console: Console = field(default_factory=Console)
    project: str | None = None
    profile: str | None = None
    sets: list[str] = field(default_factory=list)


def invocation(ctx: typer.Context) -> Invocation:
    """The run's Invocation (made by `run`; a fresh one when the app is invoked another way)."""
    found = ctx.find_object(Invocation)
    if found is None:
        found = Invocation()
        ctx.find_root().obj = found
    return found


def console(ctx: typer.Context) -> Console:
    return invocation(ctx).console


def _profile_names(_ctx: Any, _param: Any, incomplete: str) -> list[str]:
    """Shell completion of --profile: the profiles this project has (devenv profiles)."""
    from devenv.config.defaults import find_root
    from devenv.config.profiles import list_profiles
    from devenv.errors import DevenvError

    try:
        return [n for n, _p, _d in list_profiles(find_root()) if n.startswith(incomplete)]
    except DevenvError:
        return []


def _store(name: str) -> Callable[[Any, Any, Any], None]:
    def callback(ctx: Any, _param: Any, value: Any) -> None:
        if value in (None, False, ()):
            return  # not given here: the other place (or the default) holds
        run = invocation(ctx)
        if name == "sets":
            run.sets.extend(value)
        elif name == "quiet":
            run.console.quiet = True
        elif name == "verbose":
            run.console.verbose = True
        else:
            setattr(run, name, value)

    return callback


# (names, what it stores, attributes of the option)
COMMON: tuple[tuple[tuple[str, ...], str, dict[str, Any]], ...] = (
    (
        ("--project", "-p"),
        "project",
        {"metavar": "NAME", "help": "Project name (default: $DEVENV_PROJECT or the dir name)."},
    ),
    (
        ("--profile",),
        "profile",
        {
            "metavar": "NAME|PATH",
            "help": "Profile name in profiles/ or a path to a .toml (default: $DEVENV_PROFILE "
            "or local).",
            "autocompletion": _profile_names,
        },
    ),
    (
        ("--set",),
        "sets",
        {
            "metavar": "KEY=VALUE",
            "multiple": True,
            "help": "Override a profile key, e.g. services.postgres.url=... (repeatable).",
        },
    ),
    (("--quiet", "-q"), "quiet", {"is_flag": True, "help": "No progress lines on stderr."}),
    (
        ("--verbose", "-v"),
        "verbose",
        {
            "is_flag": True,
            "help": "Say which files were used; print a bug's traceback and an error's causes.",
        },
    ),
)
PANEL = "Common options"


def add_common_options(command: Any) -> None:
    """Attach COMMON to `command` (a click command or group) and to every command below it.
    A name the command already uses for itself stays its own (`down -v` is --volumes)."""
    from typer.core import TyperOption

    taken = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
    for names, store, attrs in COMMON:
        free = [n for n in names if n not in taken]
        if not any(n.startswith("--") for n in free):
            continue
        option = TyperOption(
            param_decls=[f"common_{store}", *free],
            expose_value=False,
            callback=_store(store),
            rich_help_panel=PANEL,
            **attrs,
        )
        command.params.append(option)
    for sub in getattr(command, "commands", {}).values():
        add_common_options(sub)


def options(ctx: typer.Context, *, pull: str | None = None) -> Options:
    """The command's Options from the common options; the environment's secrets join the
    console's registry. The project name is checked before anything touches the disk."""
    from devenv.config.defaults import find_root
    from devenv.config.load import Options, check_project_name, default_project_name
    from devenv.errors import ConfigError

    run = invocation(ctx)
    overrides: dict[str, str] = {}
    for item in run.sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r} has no '='", hint="write --set KEY=VALUE")
        overrides[key.strip()] = value
    if pull is not None and pull not in PULL_CHOICES:
        raise ConfigError(
            f"--pull {pull!r} is not one of {', '.join(PULL_CHOICES)}",
            hint="--pull missing (the default), always or never",
        )
    if run.project is not None:
        check_project_name(run.project)
    root = find_root()
    found = Options(
        root=root,
        project=run.project or default_project_name(root),
        profile=run.profile,
        overrides=overrides,
        pull=cast("PullPolicy | None", pull),
    )
    run.console.secrets.add_environ(found.environ)
    run.console.debug(f"project {found.project} at {root}")
    return found


def complete_service(incomplete: str) -> list[str]:
    from devenv.model import SERVICES

    return [s for s in SERVICES if s.startswith(incomplete)]


# --- arguments checked before any work -------------------------------------------------------


def writable_file(value: Path | None) -> Path | None:
    """A file devenv will write once its work is done: its directory must exist now."""
    if value is None:
        return None
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a directory; name a file in it")
    parent = value.parent if str(value.parent) else Path()
    if not parent.is_dir():
        raise typer.BadParameter(f"directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise typer.BadParameter(f"directory {parent} is not writable")
    return value


def creatable_file(value: Path | None) -> Path | None:
    """A file devenv will write, creating its missing directories (as pytest's --junitxml
    does): the nearest existing one must be a writable directory now."""
    if value is None:
        return None
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a directory; name a file in it")
    parent = value.parent if str(value.parent) else Path()
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir():
        raise typer.BadParameter(f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"directory {existing} is not writable")
    return value


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to this file (its directory must exist).",
        callback=writable_file,
    ),
]
