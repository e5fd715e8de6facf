"""Where each file devenv reads comes from: the project's own, else devenv's packaged default.

A project (a team's repository, this checkout) may bring any of these; what it lacks comes from
the copies shipped in the wheel (`devenv/_defaults/`), or, when devenv runs from a source
checkout (an editable install), from that checkout's top-level directories:

    compose/compose.yaml        the stack
    compose/images/<recipe>/    a stand-in image's recipe (each recipe on its own)
    contracts/<name>.toml       a route contract (each file on its own)
    profiles/*.toml             the profiles: a project with profiles of its own sees those (and
                                the built-in `local`), one without sees the packaged ones

The project root is the nearest directory, from the working directory up, that holds one of
MARKERS; without one, the working directory itself (`DEVENV_ROOT` overrides both).
"""

from __future__ import annotations

import os
from pathlib import Path

COMPOSE_FILE = Path("compose") / "compose.yaml"
RECIPES = Path("compose") / "images"
CONTRACTS = Path("contracts")
PROFILES = Path("profiles")
STATE = ".devenv"
# what `devenv init` writes (compose, profiles) or `up` made (.devenv): "a devenv project here"
MARKERS = (COMPOSE_FILE, PROFILES, Path(STATE))

_PACKAGE = Path(__file__).resolve().parent.parent  # devenv/
_WHEEL_DATA = _PACKAGE / "_defaults"


def packaged_root() -> Path:
    """The directory holding devenv's own compose/, contracts/ and profiles/."""
    if (_WHEEL_DATA / COMPOSE_FILE).is_file():
        return _WHEEL_DATA
    return _PACKAGE.parent  # a source checkout: its top-level directories


def own_or_packaged(root: Path, relative: Path) -> Path:
    own = root / relative
    return own if own.exists() else packaged_root() / relative


def is_packaged(path: Path) -> bool:
    try:
        path.resolve().relative_to(packaged_root().resolve())
    except ValueError:
        return False
    return True


def compose_file(root: Path) -> Path:
    return own_or_packaged(root, COMPOSE_FILE)


def recipe_dir(root: Path, recipe: str) -> Path:
    return own_or_packaged(root, RECIPES / recipe)


def contract_file(root: Path, name: str) -> Path:
    return own_or_packaged(root, CONTRACTS / name)


def profiles_dir(root: Path) -> Path:
    """The project's profiles/ when it holds a profile (not only personal `*.local.toml`
    overrides, which apply to packaged profiles too), else the packaged one."""
    own = root / PROFILES
    if any(not p.name.endswith(".local.toml") for p in own.glob("*.toml")):
        return own
    return packaged_root() / PROFILES


def is_project(directory: Path) -> bool:
    return any((directory / marker).exists() for marker in MARKERS)


def find_root(start: Path | None = None) -> Path:
    """The project root (module docstring); never an error: anywhere can hold a project."""
    env = os.environ.get("DEVENV_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if is_project(candidate):
            return candidate
    return here
