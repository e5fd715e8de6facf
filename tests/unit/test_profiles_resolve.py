"""Profile resolution: layering order and sources, extends, secrets, safety refusals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from devenv.config.defaults import packaged_root
from devenv.config.profiles import describe, list_profiles, resolve_profile
from devenv.errors import ConfigError, MissingSecretError, RefusedError

REPO = Path(__file__).resolve().parents[2]
WriteTree = Callable[[Mapping[str, str]], Path]
PG_URL = "postgres://app:s3cret@db.example.com:5432/ignition?sslmode=require"

HYBRID = """\
description = "external db"
extends = "local"
[services.postgres]
provider = "external"
url = "${DB_URL}"
"""

BASE_UNPROTECTED = """\
description = "base"
[services.postgres]
provider = "external"
url = "postgres://u:p@base:5432/db"
protected = false
"""


def error_line(exc: pytest.ExceptionInfo[ConfigError] | pytest.ExceptionInfo[RefusedError]) -> str:
    line = exc.value.one_line()
    assert "\n" not in line
    return line


def test_a_project_without_profiles_gets_the_packaged_ones(tmp_path: Path) -> None:
    profile = resolve_profile(tmp_path, None, environ={})
    assert profile.path == packaged_root() / "profiles" / "local.toml"
    assert profile.sources["services.postgres.provider"].endswith("(packaged))")
    assert {name for name, _, _ in list_profiles(tmp_path)} == {"local", "hybrid", "staging"}
    # a personal override applies to a packaged profile from the project's own profiles/
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "local.local.toml").write_text("[auth]\ndev_bypass = false\n")
    assert resolve_profile(tmp_path, None, environ={}).dev_bypass is False


def test_builtin_local_without_any_file(write_tree: WriteTree) -> None:
    tmp_path = write_tree({"profiles/other.toml": ""})  # a profiles/ of its own, no local.toml
    profile = resolve_profile(tmp_path, None, environ={})
    assert profile.name == "local"
    assert profile.path is None
    assert {b.provider for b in profile.bindings.values()} == {"local"}
    assert profile.dev_bypass is True
    assert profile.seed is True
    assert profile.sources["services.postgres.provider"] == "defaults"


def test_selector_falls_back_to_env_variable(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID})
    profile = resolve_profile(root, None, environ={"DEVENV_PROFILE": "hybrid", "DB_URL": PG_URL})
    assert profile.name == "hybrid"
    assert profile.binding("postgres").settings["url"] == PG_URL
    # an explicit selector beats the variable
    assert resolve_profile(root, "local", environ={"DEVENV_PROFILE": "hybrid"}).name == "local"


def test_layers_apply_in_order_and_record_their_source(write_tree: WriteTree) -> None:
    root = write_tree(
        {
            "profiles/base.toml": BASE_UNPROTECTED
            + '[services.objectstore]\nbucket = "from-base"\nregion = "base-region"\n',
            "profiles/team.toml": 'extends = "base"\n[services.objectstore]\nbucket = "team"\n'
            'region = "team-region"\n',
            "profiles/team.local.toml": '[services.objectstore]\nregion = "mine"\n'
            '[services.postgres]\nurl = "postgres://u:p@override:5432/db"\n',
        }
    )
    environ = {"DEVENV_POSTGRES_URL": "postgres://u:p@env:5432/db", "DEVENV_AUTH_DEV_BYPASS": "0"}
    profile = resolve_profile(
        root, "team", environ=environ, cli_overrides={"auth.dev_bypass": "true"}
    )
    store = profile.binding("objectstore").settings
    assert store == {"bucket": "team", "region": "mine"}
    assert profile.binding("postgres").settings["url"] == "postgres://u:p@env:5432/db"
    assert profile.dev_bypass is True  # the flag beats the env variable
    assert profile.sources["services.postgres.provider"] == "profile:base (profiles/base.toml)"
    assert profile.sources["services.objectstore.bucket"] == "profile:team (profiles/team.toml)"
    assert profile.sources["services.objectstore.region"] == "override:profiles/team.local.toml"
    assert profile.sources["services.postgres.url"] == "env:DEVENV_POSTGRES_URL"
    assert profile.sources["auth.dev_bypass"] == "flag"
    assert profile.sources["services.postgres.protected"] == "profile:base (profiles/base.toml)"


def test_changing_provider_drops_the_settings_of_the_old_one(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID})
    profile = resolve_profile(
        root, "hybrid", environ={}, cli_overrides={"services.postgres.provider": "local"}
    )
    assert profile.binding("postgres").provider == "local"
    assert profile.binding("postgres").settings == {}  # ${DB_URL} was never needed


def test_extends_by_relative_path(write_tree: WriteTree) -> None:
    root = write_tree(
        {
            "shared/base.toml": BASE_UNPROTECTED,
            "profiles/mine.toml": 'extends = "../shared/base.toml"\n[seed]\nenabled = false\n',
        }
    )
    profile = resolve_profile(root, "mine", environ={})
    assert profile.binding("postgres").settings["url"] == "postgres://u:p@base:5432/db"
    assert profile.seed is False
    assert profile.sources["services.postgres.url"] == "profile:base (shared/base.toml)"


def test_selector_as_path_and_backend_context_relative_to_file(write_tree: WriteTree) -> None:
    root = write_tree({"elsewhere/dev.toml": '[services.backend]\ncontext = "../backend-src"\n'})
    profile = resolve_profile(root, "elsewhere/dev.toml", environ={})
    assert profile.name == "dev"
    assert profile.binding("backend").settings["context"] == str(root / "backend-src")


def test_extends_cycle_shows_the_chain(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/a.toml": 'extends = "b"\n', "profiles/b.toml": 'extends = "a"\n'})
    with pytest.raises(ConfigError) as caught:
        resolve_profile(root, "a", environ={})
    assert "extends cycle: a → b → a" in error_line(caught)


def test_missing_profile_lists_available_ones(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID, "profiles/hybrid.local.toml": ""})
    with pytest.raises(ConfigError) as caught:
        resolve_profile(root, "hybird", environ={})
    line = error_line(caught)
    assert "did you mean `hybrid`?" in line
    assert "available profiles: hybrid, local" in line


def test_missing_variable_names_file_key_and_variable(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID})
    with pytest.raises(MissingSecretError) as caught:
        resolve_profile(root, "hybrid", environ={})
    line = error_line(caught)
    assert "profiles/hybrid.toml: services.postgres.url: variable DB_URL is not set" in line
    assert "export DB_URL=... or add it to .env" in line


def test_dotenv_supplies_variables_and_environ_wins(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID, ".env": f"DB_URL={PG_URL}\n"})
    assert resolve_profile(root, "hybrid", environ={}).binding("postgres").settings["url"] == (
        PG_URL
    )
    other = "postgres://x:y@other:5432/db"
    profile = resolve_profile(root, "hybrid", environ={"DB_URL": other})
    assert profile.binding("postgres").settings["url"] == other


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[services.postgres]\nprovider = "cloud"\n', "allowed: local, external"),
        ('[services.postgres]\nprovider = "externl"\n', "did you mean `external`?"),
        ('[services.postgress]\nprovider = "local"\n', "services.postgress: unknown service"),
        ('[services.postgres]\nprovder = "local"\n', "did you mean `provider`?"),
        ("[auth]\ndev_bypas = true\n", "did you mean `dev_bypass`?"),
        ('descripton = "x"\n', "did you mean `description`?"),
        ('[auth]\ndev_bypass = "yes"\n', "auth.dev_bypass: expected true or false, got a string"),
        ("[services.postgres]\nurl = 5\n", "services.postgres.url: expected a string"),
        ('[services.postgres]\nprovider = "external"\n', "services.postgres.url: is missing"),
        ('[services.postgres]\nurl = "postgres://h/db"\n', 'only valid with provider = "external"'),
        (
            '[services.objectstore]\nprovider = "external"\nendpoint = "https://x"\n',
            "services.objectstore.bucket: is missing",
        ),
        ('[services.backend]\ncontext = "."\nimage = "x:1"\n', "either `context` or `image`"),
        ('[services.backend]\nprovider = "external"\nurl = "ftp://x"\n', "http or https"),
        ("[services]\npostgres = 1\n", "expected a table, got an integer"),
        ("[services.postgres\n", "invalid TOML"),
        ('extends = "nope"\n', "profile `nope` not found"),
    ],
)
def test_profile_errors(write_tree: WriteTree, text: str, expected: str) -> None:
    root = write_tree({"profiles/p.toml": text})
    with pytest.raises(ConfigError) as caught:
        resolve_profile(root, "p", environ={})
    line = error_line(caught)
    assert expected in line
    assert "profiles/p.toml" in line


@pytest.mark.parametrize(
    "url", ["mysql://u:hunter2@h/db", "postgres://u:hunter2$!@h/db", "postgres://u:hunter2${@h"]
)
def test_url_errors_never_echo_the_secret(write_tree: WriteTree, url: str) -> None:
    root = write_tree({"profiles/p.toml": HYBRID.replace("${DB_URL}", url)})
    with pytest.raises(ConfigError) as caught:
        resolve_profile(root, "p", environ={})
    line = error_line(caught)
    assert "hunter2" not in line
    assert "services.postgres.url" in line


@pytest.mark.parametrize(
    ("environ", "overrides", "expected"),
    [
        ({"DEVENV_POSTGRES_URLL": "x"}, {}, "did you mean `DEVENV_POSTGRES_URL`?"),
        ({"DEVENV_AUTH_DEV_BYPASS": "maybe"}, {}, "DEVENV_AUTH_DEV_BYPASS: expected true or false"),
        ({}, {"services.postgres.ulr": "x"}, "did you mean `services.postgres.url`?"),
        ({"DEVENV_BACKEND_PROVIDER": "remote"}, {}, "allowed: local, external"),
    ],
)
def test_env_and_flag_errors(
    tmp_path: Path, environ: dict[str, str], overrides: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_profile(tmp_path, None, environ=environ, cli_overrides=overrides)
    assert expected in error_line(caught)


def test_unrelated_devenv_variables_are_ignored(tmp_path: Path) -> None:
    profile = resolve_profile(tmp_path, None, environ={"DEVENV_LOG_LEVEL": "debug"})
    assert profile.dev_bypass is True


# --- safety -------------------------------------------------------------------------------


def test_protected_external_turns_bypass_and_seed_off_by_default(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID})
    profile = resolve_profile(root, "hybrid", environ={"DB_URL": PG_URL})
    assert profile.protected_in_play == ("postgres",)
    assert profile.dev_bypass is False
    assert profile.seed is False


@pytest.mark.parametrize(
    ("environ", "overrides", "expected"),
    [
        ({"DEVENV_AUTH_DEV_BYPASS": "true"}, {}, "auth.dev_bypass = true (from env:DEVENV_AUTH"),
        ({}, {"auth.dev_bypass": "1"}, "protected = false under [services.postgres]"),
        ({}, {"seed.enabled": "true"}, "seed.allow_protected = true"),
    ],
)
def test_unsafe_combinations_are_refused(
    write_tree: WriteTree, environ: dict[str, str], overrides: dict[str, str], expected: str
) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID})
    with pytest.raises(RefusedError) as caught:
        resolve_profile(
            root, "hybrid", environ={"DB_URL": PG_URL, **environ}, cli_overrides=overrides
        )
    line = error_line(caught)
    assert expected in line
    assert "postgres" in line
    assert "s3cret" not in line


def test_opting_out_of_protection_allows_bypass(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/base.toml": BASE_UNPROTECTED + "[auth]\ndev_bypass = true\n"})
    profile = resolve_profile(root, "base", environ={})
    assert profile.dev_bypass is True
    assert profile.seed is True
    assert profile.protected_in_play == ()


def test_seed_allowed_into_protected_when_explicitly_allowed(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/hybrid.toml": HYBRID + "[seed]\nallow_protected = true\n"})
    assert resolve_profile(root, "hybrid", environ={"DB_URL": PG_URL}).seed is True


# --- shipped profiles, listing, describe ----------------------------------------------------


STAGING_ENV = {
    "STAGING_DATABASE_URL": PG_URL,
    "R2_ACCOUNT_ID": "acct",
    "R2_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "R2_SECRET_ACCESS_KEY": "r2-very-secret",
}


def test_shipped_profiles_resolve() -> None:
    assert {name for name, _, _ in list_profiles(REPO)} >= {"local", "hybrid", "staging"}
    local = resolve_profile(REPO, "local", environ={})
    assert local.protected_in_play == ()
    hybrid = resolve_profile(REPO, "hybrid", environ={"DEVENV_HYBRID_DATABASE_URL": PG_URL})
    assert hybrid.protected_in_play == ("postgres",)
    assert hybrid.binding("objectstore").provider == "local"
    staging = resolve_profile(REPO, "staging", environ=STAGING_ENV)
    assert staging.protected_in_play == ("objectstore", "postgres")
    assert staging.dev_bypass is False
    store = staging.binding("objectstore").settings
    assert store["endpoint"] == "https://acct.r2.cloudflarestorage.com"
    assert set(staging.secrets()) == {PG_URL, "AKIDEXAMPLE", "r2-very-secret"}


def test_describe_masks_every_secret() -> None:
    staging = resolve_profile(REPO, "staging", environ=STAGING_ENV)
    rows = describe(staging)
    text = repr(rows)
    for secret in ("s3cret", "AKIDEXAMPLE", "r2-very-secret"):
        assert secret not in text
    by_key = {key: (value, source) for key, value, source in rows}
    assert by_key["services.postgres.url"][0] == (
        "postgres://app:****@db.example.com:5432/ignition?sslmode=require"
    )
    assert by_key["services.objectstore.secret_access_key"][0] == "****"
    assert by_key["services.objectstore.region"] == (
        "auto",
        "profile:staging (profiles/staging.toml)",
    )


def test_list_profiles_always_has_builtin_local(write_tree: WriteTree) -> None:
    root = write_tree({"profiles/zeta.toml": 'description = "z"\n', "profiles/zeta.local.toml": ""})
    assert list_profiles(root) == [
        ("local", None, "built-in: every service runs locally"),
        ("zeta", root / "profiles" / "zeta.toml", "z"),
    ]


def test_backend_url_is_secret_only_with_userinfo(write_tree: WriteTree) -> None:
    text = '[services.backend]\nprovider = "external"\nurl = "https://api.example.com"\n'
    root = write_tree({"profiles/p.toml": text})
    assert resolve_profile(root, "p", environ={}).binding("backend").secret_keys == frozenset()
    root = write_tree({"profiles/p.toml": text.replace("https://", "https://u:pw@")})
    assert resolve_profile(root, "p", environ={}).binding("backend").secret_keys == {"url"}


# --- protection: only a profile file lowers it ----------------------------------------------

HYBRID_PROTECTED = HYBRID + "protected = true\n"


@pytest.mark.parametrize(
    ("tree", "environ", "overrides", "where"),
    [
        (HYBRID_PROTECTED, {"DEVENV_POSTGRES_PROTECTED": "false"}, {}, "DEVENV_POSTGRES_PROTECTED"),
        (HYBRID_PROTECTED, {}, {"services.postgres.protected": "0"}, "--set services.postgres"),
        # external without a word is protected by default: the same rule
        (HYBRID, {"DEVENV_POSTGRES_PROTECTED": "no"}, {}, "DEVENV_POSTGRES_PROTECTED"),
        # back and forth through another provider does not shed the file's protection
        (
            HYBRID_PROTECTED,
            {"DEVENV_POSTGRES_PROVIDER": "local"},
            {
                "services.postgres.provider": "external",
                "services.postgres.url": PG_URL,
                "services.postgres.protected": "false",
            },
            "--set services.postgres.protected",
        ),
    ],
)
def test_the_environment_and_flags_cannot_lower_a_profiles_protection(
    write_tree: WriteTree,
    tree: str,
    environ: dict[str, str],
    overrides: dict[str, str],
    where: str,
) -> None:
    root = write_tree({"profiles/hybrid.toml": tree})
    with pytest.raises(ConfigError) as caught:
        resolve_profile(
            root, "hybrid", environ={"DB_URL": PG_URL, **environ}, cli_overrides=overrides
        )
    line = error_line(caught)
    assert caught.value.exit_code == 3
    assert line.startswith(f"Config error: {where}")
    assert "services.postgres.protected" in line
    assert "profiles/hybrid.toml" in line
    assert "profiles/hybrid.local.toml" in line  # where the user may lower it
    assert "s3cret" not in line


def test_a_profile_file_may_lower_it_and_anyone_may_raise_it(write_tree: WriteTree) -> None:
    root = write_tree(
        {
            "profiles/hybrid.toml": HYBRID_PROTECTED,
            "profiles/hybrid.local.toml": "[services.postgres]\nprotected = false\n",
        }
    )
    lowered = resolve_profile(root, "hybrid", environ={"DB_URL": PG_URL})
    assert lowered.protected_in_play == ()
    raised = resolve_profile(
        root, "hybrid", environ={"DB_URL": PG_URL, "DEVENV_POSTGRES_PROTECTED": "true"}
    )
    assert raised.protected_in_play == ("postgres",)


def test_a_provider_of_the_environments_own_may_be_unprotected_there(tmp_path: Path) -> None:
    environ = {
        "DEVENV_POSTGRES_PROVIDER": "external",
        "DEVENV_POSTGRES_URL": PG_URL,
        "DEVENV_POSTGRES_PROTECTED": "false",
    }
    profile = resolve_profile(tmp_path, None, environ=environ)
    assert profile.protected_in_play == ()
