"""Profile keys for building any backend checkout: paths, cargo names, lock mode, extra env."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.config.profiles import backend_env, describe, resolve_profile
from devenv.errors import ConfigError
from tests.unit.conftest import WriteTree

CHECKOUT = """\
[services.backend]
context = "../../app/backend"
migrations = "../../app/backend/db/migrations"
package = "ignition-api"
binary = "ignition-api"
locked = false

[services.backend.env]
RUST_LOG = "debug"
AUTH_OAUTH_GOOGLE_CLIENT_ID = "${GOOGLE_ID}"
AUTH_OAUTH_GOOGLE_CLIENT_SECRET = "${GOOGLE_SECRET}"
REDIS_URL = "redis://app:pw@127.0.0.1:6379"
"""


def _error(root: Path, text: str, **environ: str) -> str:
    (root / "profiles" / "p.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        resolve_profile(root, "p", environ=environ)
    line = info.value.one_line()
    assert "\n" not in line
    return line


def test_checkout_keys_resolve_relative_to_the_profile(write_tree: WriteTree) -> None:
    root = write_tree({"conf/profiles/checkout.toml": CHECKOUT})
    environ = {"GOOGLE_ID": "gid", "GOOGLE_SECRET": "gsecret-value"}
    profile = resolve_profile(root, str(root / "conf/profiles/checkout.toml"), environ=environ)
    settings = profile.binding("backend").settings
    assert settings["context"] == str(root / "app" / "backend")
    assert settings["migrations"] == str(root / "app" / "backend" / "db" / "migrations")
    assert settings["package"] == settings["binary"] == "ignition-api"
    assert settings["locked"] == "false"
    assert backend_env(profile) == {
        "AUTH_OAUTH_GOOGLE_CLIENT_ID": "gid",
        "AUTH_OAUTH_GOOGLE_CLIENT_SECRET": "gsecret-value",
        "REDIS_URL": "redis://app:pw@127.0.0.1:6379",
        "RUST_LOG": "debug",
    }
    assert "gsecret-value" in profile.secrets()
    assert "gid" not in profile.secrets()

    shown = {key: value for key, value, _ in describe(profile)}
    assert shown["services.backend.env.RUST_LOG"] == "debug"
    assert shown["services.backend.env.AUTH_OAUTH_GOOGLE_CLIENT_ID"] == "gid"
    assert shown["services.backend.env.AUTH_OAUTH_GOOGLE_CLIENT_SECRET"] == "****"
    assert shown["services.backend.env.REDIS_URL"] == "redis://app:****@127.0.0.1:6379"
    assert shown["services.backend.locked"] == "false"
    sources = {key: source for key, _, source in describe(profile)}
    assert sources["services.backend.env.RUST_LOG"].startswith("profile:checkout")


def test_flags_and_env_variables_reach_the_new_keys(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/local.toml": "[services.backend.env]\nRUST_LOG = 'info'\n"})
    profile = resolve_profile(
        root,
        None,
        environ={"DEVENV_BACKEND_LOCKED": "yes", "DEVENV_BACKEND_PACKAGE": "api"},
        cli_overrides={"services.backend.env.RUST_LOG": "trace"},
    )
    settings = profile.binding("backend").settings
    assert settings["locked"] == "true"
    assert settings["package"] == "api"
    assert backend_env(profile) == {"RUST_LOG": "trace"}
    assert profile.sources["services.backend.env.RUST_LOG"] == "flag"


@pytest.mark.parametrize(
    "name", ["DATABASE_URL", "STORAGE_ENDPOINT", "STORAGE_SECRET_ACCESS_KEY", "AUTH_DEV_BYPASS",
             "SERVER_ENVIRONMENT", "SERVER_PORT", "SERVER_HOST", "database_url"],
)  # fmt: skip
def test_owned_variables_are_refused_naming_file_and_key(write_tree: WriteTree, name: str) -> None:
    root = write_tree({"profiles/.keep": ""})
    line = _error(root, f'[services.backend.env]\n{name} = "x"\n')
    assert "profiles/p.toml" in line
    assert f"services.backend.env.{name}" in line
    assert "set by devenv" in line


def test_owned_variables_are_refused_from_flags_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set services\.backend\.env\.DATABASE_URL"):
        resolve_profile(
            tmp_path, None, environ={}, cli_overrides={"services.backend.env.DATABASE_URL": "x"}
        )


EXTERNAL = '[services.backend]\nprovider = "external"\nurl = "http://x"\n'
LOCAL_ONLY = 'only valid with provider = "local"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[services.backend.env]\nRUST_LOG = 3\n", "env.RUST_LOG: expected a string"),
        ('[services.backend.env]\n"BAD NAME" = "x"\n', "invalid environment variable name"),
        ("[services.backend]\nenv = 'RUST_LOG=1'\n", "services.backend.env: expected a table"),
        ('[services.backend]\nlocked = "yes"\n', "services.backend.locked: expected true or"),
        ('[services.backend]\npackage = "a b"\n', "is not a cargo package name"),
        ('[services.backend]\nimage = "x:1"\nbinary = "api"\n', "built from a source checkout"),
        (EXTERNAL + '[services.backend.env]\nA = "1"\n', LOCAL_ONLY),
        (EXTERNAL + 'migrations = "m"\n', LOCAL_ONLY),
    ],
)
def test_bad_backend_keys(write_tree: WriteTree, text: str, expected: str) -> None:
    root = write_tree({"profiles/.keep": ""})
    assert expected in _error(root, text)


def test_migrations_may_accompany_an_image(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/p.toml": '[services.backend]\nimage = "x:1"\nmigrations = "m"\n'})
    settings = resolve_profile(root, "p", environ={}).binding("backend").settings
    assert settings["migrations"] == str(root / "profiles" / "m")
