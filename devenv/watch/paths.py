"""What `devenv watch` watches, pure: which saves count, and how they are gathered.

The backend's build inputs at the workspace root (and at the package's own directory when
that is another): `src/`, `crates/`, `migrations/` and `.cargo/` whole, and the top-level
`build.rs`, `Cargo.toml`, `Cargo.lock` and toolchain files. Never `target/` (wherever it is),
version-control directories or the temporary and backup files editors write beside a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from devenv.config.load import Config
from devenv.errors import ConfigError

TREES = ("src", "crates", "migrations", ".cargo")  # watched whole
TOP_FILES = ("build.rs", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "rust-toolchain")
IGNORED_DIRS = frozenset(("target", ".git", ".hg", ".svn", ".jj", ".idea", ".vscode"))
# Editors' swap, backup, lock and atomic-save temporaries: vim (.x.swp, x~, 4913), emacs
# (.#x, #x#), JetBrains (x___jb_tmp___), Kate, gedit, `sed -i` (sedXXXXXX), merge leftovers.
_EDITOR_TEMP = re.compile(
    r"""(
        .*~ | \.\#.* | \#.*\# | 4913 | \.DS_Store
      | .*\.sw[a-p]x? | .*___jb_(tmp|old)___ | .*\.kate-swp | \.goutputstream-.*
      | sed[A-Za-z0-9]{6} | .*\.(tmp|temp|bak|orig|rej|part|crdownload)
    )""",
    re.VERBOSE,
)
DEFAULT_PROFILE = "fast"  # measured: see the README's `devenv watch` section


def editor_temp(name: str) -> bool:
    """Whether a file name is one an editor writes around a save, not a source file."""
    return _EDITOR_TEMP.fullmatch(name) is not None


@dataclass(frozen=True)
class WatchSet:
    """The checkout's build inputs: `roots` (the workspace root, then the package directory
    when it is another) and `extra` directories watched whole (an explicit migrations one)."""

    roots: tuple[Path, ...]
    extra: tuple[Path, ...] = ()

    def trees(self) -> list[Path]:
        """Directories to watch recursively (those that exist are the watcher's business)."""
        return [root / name for root in self.roots for name in TREES] + list(self.extra)

    def relevant(self, path: PurePath) -> bool:
        """Whether a change at `path` (absolute) changes what cargo builds."""
        for base in self.extra:
            if path.is_relative_to(base):
                return _clean(path.relative_to(base).parts)
        for root in self.roots:
            if not path.is_relative_to(root):
                continue
            parts = path.relative_to(root).parts
            if not parts or not _clean(parts):
                continue
            if len(parts) == 1 and parts[0] in TOP_FILES:
                return True
            if len(parts) > 1 and parts[0] in TREES:
                return True
        return False

    def shown(self, path: PurePath) -> str:
        """A changed path as the cycle's line names it: relative to the checkout."""
        for base in (self.roots[0], *self.extra):
            if path.is_relative_to(base):
                rel = path.relative_to(base)
                return str(rel) if base == self.roots[0] else str(PurePath(base.name) / rel)
        return str(path)


def _clean(parts: tuple[str, ...]) -> bool:
    return bool(parts) and not editor_temp(parts[-1]) and not IGNORED_DIRS & set(parts)


def refusal(config: Config) -> ConfigError | None:
    """Why this profile's backend cannot be watched: it is not built from a checkout here."""
    binding = config.profile.binding("backend")
    name = config.profile.name
    file = str(config.profile.path) if config.profile.path else None
    if binding.provider == "external":
        return ConfigError(
            f"profile {name} binds the backend to an external provider: devenv watch rebuilds "
            "a local backend from its checkout",
            file=file,
            key="services.backend.provider",
            hint="watch with a profile whose backend is local (services.backend.context)",
        )
    image = binding.settings.get("image")
    if image:
        return ConfigError(
            f"profile {name} runs the backend from image {image}: there is no checkout for "
            "devenv watch to rebuild",
            file=file,
            key="services.backend.image",
            hint="drop `image` and point services.backend.context at the checkout",
        )
    if config.backend_build() is None:
        return ConfigError(
            "the backend has no source checkout to watch",
            key="services.backend.context",
            hint="point services.backend.context at the backend's cargo workspace",
        )
    return None


def watch_profile(config: Config) -> str:
    """The cargo profile watch builds with (`services.backend.watch_profile`)."""
    return config.profile.binding("backend").settings.get("watch_profile") or DEFAULT_PROFILE


@dataclass
class Debouncer:
    """Saves gathered into one batch: due once `quiet` seconds pass without another, or
    `longest` after the first (an editor saving forever still gets built)."""

    quiet: float
    longest: float
    _paths: dict[str, None] = field(default_factory=dict)
    _first: float | None = None
    _last: float = 0.0

    def add(self, paths: Iterable[str], now: float) -> None:
        fresh = list(paths)
        if not fresh:
            return
        self._paths.update(dict.fromkeys(fresh))
        if self._first is None:
            self._first = now
        self._last = now

    @property
    def pending(self) -> bool:
        return bool(self._paths)

    def due(self, now: float) -> float | None:
        """Seconds until the batch is due (0: now); None when nothing is pending."""
        if self._first is None:
            return None
        at = min(self._last + self.quiet, self._first + self.longest)
        return max(0.0, at - now)

    def take(self) -> tuple[str, ...]:
        """The batch, sorted; the debouncer starts empty again."""
        batch = tuple(sorted(self._paths))
        self._paths.clear()
        self._first = None
        return batch
