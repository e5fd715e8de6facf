"""The CLI as a new user meets it, without an engine: version, completion, the common options in
either place, arguments checked before any work, one line and a documented code for every way
out (a bug's included), `init` and `ls`.

DOCKER_HOST points at a closed loopback port: a command that got as far as the engine exits 4,
which is how these tests tell "parsed and validated" from "refused".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devenv import __version__
from devenv import app as core
from devenv.config.load import Options
from devenv.errors import INTERNAL_ERROR, RefusedError
from devenv.runtime.base import LABEL_CHECKOUT, LABEL_PROFILE
from devenv.stacks import list_stacks
from tests.unit.clirun import run_cli
from tests.unit.stacks import fakes, make_root

REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root of its own, a cache of its own, an engine nobody answers on."""
    project = make_root(tmp_path / "proj")
    for key in [k for k in os.environ if k.startswith("DEVENV_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DEVENV_ROOT", str(project))
    monkeypatch.setenv("DEVENV_PROJECT", "t-first")
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    return project


@pytest.fixture
def cli(root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def call(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, *args)

    return call


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def spy(monkeypatch: pytest.MonkeyPatch, name: str, result: Any = None) -> list[Options]:
    """Replace the use case `core.<name>` by one that records the Options it was given."""
    seen: list[Options] = []

    def fake(options: Options, *_args: Any, **_kwargs: Any) -> Any:
        seen.append(options)
        return result

    monkeypatch.setattr(core, name, fake)
    return seen


def files_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


# --- version and completion ------------------------------------------------------------------


def test_version(cli: Cli) -> None:
    code, out, err = cli("--version")
    assert (code, out.strip(), err) == (0, f"devenv {__version__}", "")


def test_json_documents_carry_the_version(cli: Cli) -> None:
    for args in (("config", "--json"), ("profiles", "--json")):
        code, out, err = cli(*args)
        assert code == 0, err
        assert json.loads(out)["devenv_version"] == __version__, args


def _completion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devenv", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "DEVENV_ROOT": str(REPO), **env},
    )


def test_show_completion_prints_each_shell_s_script() -> None:
    # with shell detection off, typer takes the shell as the option's value
    off = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    bash = _completion(off, "--show-completion", "bash")
    assert bash.returncode == 0, bash.stderr
    assert "complete -o default -F _devenv_completion devenv" in bash.stdout
    assert "_DEVENV_COMPLETE=complete_bash" in bash.stdout
    assert (
        "compdef _devenv_completion devenv" in _completion(off, "--show-completion", "zsh").stdout
    )
    fish = _completion(off, "--show-completion", "fish").stdout
    assert "complete --command devenv" in fish


def test_bash_completes_commands_services_and_profiles() -> None:
    def complete(*words: str) -> list[str]:
        env = {
            "_DEVENV_COMPLETE": "complete_bash",
            "COMP_WORDS": " ".join(("devenv", *words)),
            "COMP_CWORD": str(len(words)),
        }
        done = _completion(env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "status" in complete("sta")
    assert complete("restart", "ob") == ["objectstore"]
    assert set(complete("up", "--profile", "")) >= {"local", "hybrid", "staging"}
    assert "--project" in complete("logs", "--pro")


# --- the common options, before or after the command word -------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--project", "x", "profiles"),
        ("profiles", "--project", "x", "--profile", "local", "--set", "seed.enabled=true"),
        ("--project", "x", "logs"),
        ("logs", "backend", "-p", "x", "--profile", "hybrid", "--set", "auth.dev_bypass=false"),
        ("down", "--project", "x", "--profile", "local", "--set", "seed.enabled=true"),
        ("--project", "x", "--set", "seed.enabled=true", "down"),
        ("images", "build", "--project", "x", "--set", "seed.enabled=true"),
        ("--profile", "local", "images", "build", "-p", "x"),
        ("status", "--project", "x", "-q"),
        ("-v", "check", "--project", "x"),
    ],
    ids=" ".join,
)
def test_common_options_are_accepted_before_and_after_the_command(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("DEVENV_HYBRID_DATABASE_URL", "postgres://u:p@db.example:5432/x")
    code, _out, err = cli(*args)
    assert "No such option" not in err
    assert code in (0, 4), err  # 4: parsed, checked, and then the engine was asked


def test_after_the_command_word_wins_and_sets_add_up(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = spy(monkeypatch, "status", core.StatusResult("b", "hybrid", ()))
    monkeypatch.setenv("DEVENV_HYBRID_DATABASE_URL", "postgres://u:p@db.example:5432/x")
    code, _out, err = cli(
        "--project", "a", "--profile", "local", "--set", "seed.enabled=false",
        "status", "--project", "b", "--profile", "hybrid", "--set", "auth.dev_bypass=false",
    )  # fmt: skip
    assert code == 0, err
    assert (seen[0].project, seen[0].profile) == ("b", "hybrid")
    assert dict(seen[0].overrides) == {"seed.enabled": "false", "auth.dev_bypass": "false"}


def test_quiet_drops_progress_and_verbose_says_where_files_came_from(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def images(_options: Options, *, progress: Callable[[str], None], **_kw: Any) -> list[str]:
        progress("building something")
        return ["postgres: built it"]

    monkeypatch.setattr(core, "build_images", images)
    code, out, err = cli("images", "build")
    assert (code, out.strip()) == (0, "postgres: built it")
    assert "building something" in err
    code, out, err = cli("-q", "images", "build")
    assert (code, out.strip(), err) == (0, "postgres: built it", "")
    code, out, err = cli("config", "-v")
    assert code == 0, err
    assert "[debug] compose file compose/compose.yaml" in err


# --- checked before any work, one line each ---------------------------------------------------


def test_report_to_a_missing_directory_is_refused_before_any_check(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran = spy(monkeypatch, "report")
    code, _out, err = cli("report", "-o", str(tmp_path / "missing" / "x.md"))
    line = one_line(err)
    assert code == 2
    assert line.startswith("Usage error: Invalid value for '--output'")
    assert "does not exist; create it first" in line
    assert ran == []
    code, _out, err = cli("check", "--junit", str(tmp_path))  # a directory, not a file
    assert (code, "is a directory" in one_line(err)) == (2, True)
    # --junit makes missing directories (as pytest's --junitxml does) under a writable one
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _out, err = cli("check", "--junit", str(blocker / "reports" / "x.xml"))
    assert (code, f"{blocker} is not a directory" in one_line(err)) == (2, True)
    code, _out, err = cli("check", "--junit", str(tmp_path / "reports" / "x.xml"))
    assert code == 4, err  # accepted: it went on to ask the engine


def test_ui_port_out_of_range_is_one_line(cli: Cli) -> None:
    code, _out, err = cli("ui", "--port", "99999", "--no-browser")
    assert code == 2
    assert "99999 is not in the range 1<=x<=65535" in one_line(err)


def test_usage_errors_are_one_line_with_the_fix(cli: Cli) -> None:
    code, _out, err = cli("up", "--bogus")
    assert code == 2
    assert one_line(err).startswith("Usage error: No such option: --bogus")
    assert "(fix: see `devenv up --help`)" in err


def test_restart_of_an_unknown_service_touches_neither_engine_nor_lock(
    cli: Cli, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine() -> None:
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(core, "REAL", core.Adapters(runtime=no_engine))  # type: ignore[arg-type]
    monkeypatch.setattr("devenv.runtime.docker.DockerRuntime", no_engine)
    code, _out, err = cli("restart", "nosuch")
    assert code == 3
    assert one_line(err) == (
        "Config error: unknown service 'nosuch' (fix: use one of: postgres, objectstore, backend)"
    )
    assert not (root / ".devenv").exists()  # no lock taken


def test_config_rejects_a_broken_compose_file_as_up_does(cli: Cli, root: Path) -> None:
    compose = root / "compose" / "compose.yaml"
    compose.write_text(compose.read_text().replace("    command: [", "    comand: ["))
    said = []
    for args in (("config",), ("up", "--dry-run")):
        code, _out, err = cli(*args)
        assert code == 3, err
        said.append(one_line(err))
    assert said[0] == said[1]
    assert "services → objectstore → comand: unknown key" in said[0]


@pytest.mark.parametrize("name", ["../../x", "Upper", "a/b", "-x", "x" * 64])
def test_a_bad_project_name_is_refused_before_the_disk_is_touched(
    cli: Cli, tmp_path: Path, name: str
) -> None:
    before = files_under(tmp_path)
    for args in (("up", "--project", name), ("--project", name, "snapshot", "save", "s")):
        code, _out, err = cli(*args)
        assert code == 3
        assert "invalid project name" in one_line(err)
    assert files_under(tmp_path) == before


def test_a_bad_project_name_from_the_environment_names_the_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVENV_PROJECT", "../up")
    code, _out, err = cli("status")
    assert code == 3
    assert one_line(err).startswith("Config error: DEVENV_PROJECT: invalid project name")


# --- down --volumes asks; no is 9, as is no terminal -------------------------------------------


@pytest.mark.parametrize("answer", ["n\n", "\n", ""], ids=["no", "enter", "eof"])
def test_down_volumes_answered_no_is_refused_with_9(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    import io

    seen = spy(monkeypatch, "down")
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    code, out, err = cli("down", "--volumes")
    assert code == 9
    assert "Delete all data" in out  # it asked
    assert err.strip().splitlines()[-1].startswith("Refused: `down --volumes` deletes the data")
    assert "nothing was removed" in err
    assert seen == []


def test_down_volumes_without_a_terminal_is_refused_the_same_way(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = spy(monkeypatch, "down")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _out, err = cli("down", "--volumes")
    assert (code, seen) == (9, [])
    assert "(fix: answer y, or add --yes)" in one_line(err)


def test_down_volumes_answered_yes_goes_ahead(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    seen = spy(monkeypatch, "down", core.DownResult([], ["t-first_pgdata"], []))
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    code, out, err = cli("down", "--volumes")
    assert code == 0, err
    assert [o.project for o in seen] == ["t-first"]
    assert "Deleted volumes: t-first_pgdata." in out


# --- a bug: one line, a log file, its own exit code -------------------------------------------


def test_an_unexpected_exception_is_one_line_naming_its_log(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEVENV_API_TOKEN", "tok-very-secret-1")

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("tok-very-secret-1 went missing")

    monkeypatch.setattr(core, "status", boom)
    code, _out, err = cli("status")
    assert code == INTERNAL_ERROR == 70
    line = one_line(err)
    assert line.startswith("Internal error: KeyError: ")
    assert "tok-very-secret-1" not in line
    logs = list((tmp_path / "cache" / "crashes").glob("devenv-*.log"))
    assert len(logs) == 1
    assert str(logs[0]) in line
    assert logs[0].stat().st_mode & 0o077 == 0
    text = logs[0].read_text()
    assert "Traceback" in text
    assert "in boom" in text
    assert "tok-very-secret-1" not in text
    code, _out, err = cli("-v", "status")  # -v: the traceback on the terminal too
    assert code == 70
    assert "Traceback" in err


# --- one name for seeding a protected provider ------------------------------------------------


def test_seed_protected_is_a_deprecated_spelling_of_the_profile_keys(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Options] = []

    def up(options: Options, **_kw: Any) -> Any:
        seen.append(options)
        raise RefusedError("stop here")

    monkeypatch.setattr(core, "up", up)
    code, _out, err = cli("up", "--seed-protected", "--set", "seed.enabled=false")
    assert code == 9
    assert "--seed-protected is deprecated; it means --set seed.allow_protected=true" in err
    # the flag's keys first: an explicit --set wins
    assert dict(seen[0].overrides) == {"seed.allow_protected": "true", "seed.enabled": "false"}
    code, out, _err = cli("up", "--help")
    assert "--seed-protected" not in out


# --- init ---------------------------------------------------------------------------------------


def test_init_writes_a_starter_that_config_accepts_and_never_overwrites(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team = tmp_path / "team"
    team.mkdir()
    (team / ".gitignore").write_text("node_modules/\n")
    monkeypatch.chdir(team)
    monkeypatch.delenv("DEVENV_ROOT")
    code, out, err = cli("init", "--backend", str(REPO / "backend"))
    assert code == 0, err
    assert "wrote compose/compose.yaml" in out
    assert (team / "profiles" / "local.toml").is_file()
    assert (team / ".gitignore").read_text().splitlines()[-3:] == [
        ".devenv/",
        "profiles/*.local.toml",
        ".env",
    ]
    code, out, err = cli("config", "--json")
    assert code == 0, err
    values = {v["key"]: v for v in json.loads(out)["values"]}
    context = values["services.backend.context"]
    assert Path(context["value"]) == REPO / "backend"
    assert context["source"] == "profile:local (profiles/local.toml)"
    before = {p: p.read_bytes() for p in files_under(team) if p.is_file()}
    code, _out, err = cli("init")
    assert code == 9
    assert "already exist in" in one_line(err)
    assert {p: p.read_bytes() for p in files_under(team) if p.is_file()} == before


def test_init_refuses_a_backend_that_is_not_a_directory(cli: Cli, tmp_path: Path) -> None:
    code, _out, err = cli("init", "--backend", str(tmp_path / "nope"))
    assert code == 2
    assert "is not a directory" in one_line(err)


# --- ls -----------------------------------------------------------------------------------------


def test_ls_lists_each_stack_with_its_checkout_profile_ports_and_health(tmp_path: Path) -> None:
    one = Options(root=make_root(tmp_path / "one"), project="p-one", environ={})
    two = Options(root=make_root(tmp_path / "two"), project="p-two", environ={}, profile="local")
    f = fakes(one)
    core.up(one, adapters=f.adapters)
    core.up(two, adapters=f.adapters)
    backend = next(c for c in f.runtime.containers.values() if c.spec.name == "p-two-backend")
    backend.state, backend.exit_code = "exited", 101
    rows = {r.project: r for r in list_stacks(adapters=f.adapters)}
    assert set(rows) == {"p-one", "p-two"}
    assert (rows["p-one"].checkout, rows["p-one"].profile) == (str(one.root), "local")
    assert rows["p-two"].checkout == str(two.root)
    assert rows["p-one"].healthy is True
    assert rows["p-one"].state == "running"
    assert set(rows["p-one"].ports) == {"postgres", "objectstore", "backend"}
    assert rows["p-two"].healthy is False
    assert rows["p-two"].state == "partly running"
    dead = next(s for s in rows["p-two"].services if s.name == "backend")
    assert (dead.healthy, dead.detail) == (False, "exited with code 101")
    assert [r.project for r in list_stacks(project="p-two", adapters=f.adapters)] == ["p-two"]


def test_containers_carry_their_checkout_and_an_older_one_is_recreated_once(
    tmp_path: Path,
) -> None:
    options = Options(root=make_root(tmp_path / "one"), project="p-one", environ={})
    f = fakes(options)
    core.up(options, adapters=f.adapters)
    pg = next(c for c in f.runtime.containers.values() if c.spec.service == "postgres")
    labels = dict(pg.spec.labels)
    assert (labels[LABEL_CHECKOUT], labels[LABEL_PROFILE]) == (str(options.root), "local")
    assert core.plan_up(options, adapters=f.adapters).plan.noop
    # a container an older devenv made: same configuration, no checkout label
    old = {k: v for k, v in labels.items() if k not in (LABEL_CHECKOUT, LABEL_PROFILE)}
    pg.spec = pg.spec.__class__(**{**pg.spec.__dict__, "labels": tuple(sorted(old.items()))})
    plan = core.plan_up(options, adapters=f.adapters).plan
    assert plan.step("recreate:postgres").cause == (
        "labels: no checkout and profile (made by an older devenv)"
    )
    assert [s.id for s in plan.steps if s.kind == "recreate"] == ["recreate:postgres"]


def test_ls_from_anywhere_as_json_and_as_a_table(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one = Options(root=make_root(tmp_path / "one"), project="p-one", environ={})
    f = fakes(one)
    core.up(one, adapters=f.adapters)
    monkeypatch.setattr(core, "REAL", f.adapters)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("DEVENV_ROOT")
    code, out, err = cli("ls", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["devenv_version"], data["schema_version"]) == (__version__, 1)
    (stack,) = data["stacks"]
    assert (stack["project"], stack["checkout"], stack["healthy"]) == ("p-one", str(one.root), True)
    assert sorted(stack["ports"]) == ["backend", "objectstore", "postgres"]
    assert all(s["healthy"] for s in stack["services"])
    code, out, err = cli("ls")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["PROJECT", "PROFILE", "STATE", "HEALTH", "PORTS", "AGE", "CHECKOUT"]
    assert row.startswith("p-one")
    assert "3/3 healthy" in row
    assert row.endswith(str(one.root))
    assert list(elsewhere.iterdir()) == []  # listing wrote nothing where it ran
