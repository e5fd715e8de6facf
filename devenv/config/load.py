"""What the files say, read once per run: the project root, the profile and the compose file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devenv.config import defaults
from devenv.config.interpolate import one_line
from devenv.errors import ConfigError
from devenv.model import SERVICES, BackendBuild, Profile, Project, PullPolicy, ServiceSpec

_NAME_OK = re.compile(r"[^a-z0-9_-]+")
# the engine's project names (docker compose's too): they name containers, volumes and the
# state directory .devenv/<project>, so nothing else (no '/', no '..') may reach the disk
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def check_project_name(name: str, *, source: str = "--project") -> str:
    """The name itself, or a ConfigError naming where it came from."""
    if not PROJECT_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid project name {one_line(name)}",
            key=source,
            hint="use up to 63 lowercase letters, digits, '-' and '_', starting with a letter "
            "or digit",
        )
    return name


@dataclass(frozen=True)
class Options:
    """Where and how: the project directory, its name, the profile and overrides.

    The project name is checked here, before anything can use it as a path."""

    root: Path
    project: str
    profile: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    # not in the repr: the environment holds credentials (tracebacks print reprs)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    pull: PullPolicy | None = None  # `--pull`: overrides every service's pull_policy but build

    def __post_init__(self) -> None:
        check_project_name(self.project, source="project")


def default_project_name(root: Path) -> str:
    env = os.environ.get("DEVENV_PROJECT")
    if env:
        return check_project_name(env, source="DEVENV_PROJECT")
    return _NAME_OK.sub("-", root.name.lower()).strip("-_")[:63] or "devenv"


@dataclass(frozen=True)
class MigrationSource:
    """Where the backend's sqlx migrations are, or why they are unknown (`directory` None)."""

    directory: Path | None
    source: Path | None  # the checkout they belong to (the directory itself, for an image)
    display: str = ""
    why: str = ""


@dataclass(frozen=True)
class Config:
    """The profile and the compose file of one run, validated; nothing asked of the engine."""

    options: Options
    profile: Profile
    project: Project

    @property
    def name(self) -> str:
        return self.options.project

    @property
    def profile_ref(self) -> str:
        """The profile as `--profile` names it from the project root again: its name when
        that finds it there, else its file's absolute path."""
        path = self.profile.path
        if path is None:
            return self.profile.name
        by_name = defaults.profiles_dir(self.options.root) / f"{self.profile.name}.toml"
        return self.profile.name if by_name == path else str(path.resolve())

    def local(self, service: str) -> bool:
        return self.profile.binding(service).provider == "local"

    def protected(self, service: str) -> bool:
        binding = self.profile.binding(service)
        return binding.provider == "external" and binding.protected

    def service(self, name: str) -> ServiceSpec:
        return self.project.service(name)

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.project.services)

    def pull_policy(self, svc: ServiceSpec) -> PullPolicy:
        """When to pull `svc`'s image: compose's `build` stays; else `--pull`, else compose's
        pull_policy, else missing."""
        if svc.pull_policy == "build":
            return "build"
        return self.options.pull or svc.pull_policy or "missing"

    def backend_context(self) -> Path | None:
        """The backend source checkout to build: the profile's `context`, else compose's."""
        if not self.has("backend"):
            return None
        ctx = self.profile.binding("backend").settings.get("context")
        return Path(ctx) if ctx else self.service("backend").build_context

    def backend_build(self) -> BackendBuild | None:
        """How the profile asks for the backend to be built; None when it runs a given image."""
        settings = self.profile.binding("backend").settings
        context = self.backend_context()
        if context is None or settings.get("image") or not self.local("backend"):
            return None
        if not context.is_dir():
            where = "services.backend.context" if settings.get("context") else "the compose file"
            raise ConfigError(
                f"the backend checkout {context} (from {where}) is not a directory",
                key="services.backend.context",
                hint="point services.backend.context in your profile at the backend's cargo "
                "workspace (relative to the profile file), or set services.backend.image",
            )
        return BackendBuild(
            context=context,
            package=settings.get("package", BackendBuild.package),
            binary=settings.get("binary", BackendBuild.binary),
            locked={"true": True, "false": False}.get(settings.get("locked", "")),
        )

    def migration_source(self) -> MigrationSource:
        """The migrations the backend will accept in its database, or why they are unknown
        (an external backend, an image without `migrations`)."""
        binding = self.profile.binding("backend")
        if binding.provider == "external":
            return MigrationSource(None, None, why="the backend is external")
        image = binding.settings.get("image")
        context = None if image else self.backend_context()
        explicit = binding.settings.get("migrations")
        if explicit:
            directory = Path(explicit)
            source = context.resolve() if context else directory.resolve()
            return MigrationSource(
                directory, source, display=f"{directory} (services.backend.migrations)"
            )
        if image:
            return MigrationSource(
                None,
                None,
                why=f"the backend runs image {image}; services.backend.migrations would name "
                "its migrations",
            )
        if context is None:
            return MigrationSource(None, None, why="the backend has no source checkout")
        directory = context / "migrations"
        if not directory.is_dir():
            return MigrationSource(
                None, None, why=f"{context.resolve()} has no migrations directory"
            )
        return MigrationSource(directory, context.resolve(), display=str(directory))


def load_config(options: Options) -> Config:
    """Read and validate the profile and the compose file; raises ConfigError on bad input."""
    from devenv.config.compose import load_project
    from devenv.config.profiles import resolve_profile

    profile = resolve_profile(
        options.root, options.profile, environ=options.environ, cli_overrides=options.overrides
    )
    project = load_project(options.root, project_name=options.project, variables=options.environ)
    _fixed_services(project)
    return Config(options, profile, project)


def _fixed_services(project: Project) -> None:
    """The stack is Postgres, an object store and the backend: profiles bind, checks probe and
    phases read exactly these, so the compose file declares exactly these."""
    from devenv.config.compose import display_path

    file = display_path(project.compose_file, project.root)
    names = [s.name for s in project.services]
    for name in names:
        if name not in SERVICES:
            raise ConfigError(
                f"unknown service `{name}`: the stack is {', '.join(SERVICES)}",
                file=file,
                key=f"services → {name}",
                hint="remove it; devenv runs exactly these services",
            )
    for name in SERVICES:
        if name not in names:
            raise ConfigError(
                f"missing service `{name}`", file=file, key="services", hint=f"declare {name}"
            )
