"""Bad input through the real CLI error boundary: one stderr line naming file and key, exit 3.

The CLI runs in-process (`devenv.cli.main.run`) with DOCKER_HOST pointed at a closed loopback
port: configuration is checked before the engine is contacted, so none of these needs Docker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.unit.clirun import run_cli

REPO = Path(__file__).resolve().parents[2]
COMPOSE = "compose/compose.yaml"
ORIGINAL = (REPO / COMPOSE).read_text(encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's compose file and profiles that a test may break."""
    (tmp_path / "compose").mkdir()
    (tmp_path / COMPOSE).write_text(ORIGINAL, encoding="utf-8")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    shutil.copytree(REPO / "contracts", tmp_path / "contracts")
    for key in ("DEVENV_PROFILE", "DEVENV_HYBRID_DATABASE_URL", "DEVENV_PROJECT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DEVENV_ROOT", str(tmp_path))
    monkeypatch.setenv("DEVENV_PROJECT", "t-cli-errors")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    return tmp_path


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    code, _, err = run_cli(monkeypatch, capsys, *args)
    return code, err


def edit(root: Path, old: str, new: str) -> None:
    assert ORIGINAL.count(old) == 1, old
    (root / COMPOSE).write_text(ORIGINAL.replace(old, new), encoding="utf-8")


def one_config_line(code: int, err: str) -> str:
    assert code == 3, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            '    ports:\n      - "127.0.0.1:${POSTGRES_PORT',
            '    ports: [\n      - "127.0.0.1:${POSTGRES_PORT',
            ("invalid YAML", "line "),
            id="malformed-yaml",
        ),
        pytest.param(
            "    command: [",
            "    comand: [",
            ("services → objectstore → comand", "unknown key", "did you mean `command`"),
            id="unknown-key-did-you-mean",
        ),
        pytest.param(
            "      RUST_LOG: info",
            "      RUST_LOG: [info]",
            ("services → backend → environment → RUST_LOG", "got a list"),
            id="wrong-type",
        ),
        pytest.param(
            "      objectstore:\n        condition",
            "      objectstor:\n        condition",
            ("services → backend → depends_on", "unknown service `objectstor`", "objectstore"),
            id="unknown-depends-on",
        ),
        pytest.param(
            "      - pgdata:/var/lib/postgresql/data\n",
            "      - pgdata:/var/lib/postgresql/data\n    depends_on: [backend]\n",
            ("depends_on", "dependency cycle", "postgres → backend → postgres"),
            id="dependency-cycle",
        ),
        pytest.param(
            '"127.0.0.1:${OBJECTSTORE_PORT:-9000}:9000"',
            '"127.0.0.1:${OBJECTSTORE_PORT:-9000}:99999"',
            ("services → objectstore → ports[0]", "99999"),
            id="invalid-port",
        ),
    ],
)
def test_broken_compose_file_is_one_line_naming_file_and_key(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    expected: tuple[str, ...],
) -> None:
    edit(project, old, new)
    line = one_config_line(*cli(monkeypatch, capsys, "up", "--dry-run"))
    assert line.startswith("Config error: compose/compose.yaml: "), line
    for part in expected:
        assert part in line, (part, line)


@pytest.mark.parametrize(
    "command", [("up", "--dry-run"), ("up",), ("status",)], ids=["dry-run", "up", "status"]
)
def test_missing_variable_in_profile_names_file_key_and_variable(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    line = one_config_line(*cli(monkeypatch, capsys, *command, "--profile", "hybrid"))
    assert "profiles/hybrid.toml" in line
    assert "services.postgres.url" in line
    assert "DEVENV_HYBRID_DATABASE_URL" in line


@pytest.mark.parametrize("command", [("up", "--dry-run"), ("config",)], ids=["up", "config"])
def test_unknown_profile_names_the_option_and_the_alternatives(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    line = one_config_line(*cli(monkeypatch, capsys, *command, "--profile", "hybird"))
    assert "--profile" in line
    assert "profile `hybird` not found" in line
    assert "did you mean `hybrid`" in line


def test_unknown_profile_from_the_environment_names_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEVENV_PROFILE", "nosuch")
    line = one_config_line(*cli(monkeypatch, capsys, "config"))
    assert "DEVENV_PROFILE" in line
    assert "nosuch" in line


def test_extends_cycle_names_file_and_key(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "profiles" / "left.toml").write_text('extends = "right"\n', encoding="utf-8")
    (project / "profiles" / "right.toml").write_text('extends = "left"\n', encoding="utf-8")
    line = one_config_line(*cli(monkeypatch, capsys, "up", "--dry-run", "--profile", "left"))
    assert "profiles/left.toml: extends: " in line
    assert "extends cycle: left → right → left" in line


def test_logs_of_unknown_service_names_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_config_line(*cli(monkeypatch, capsys, "logs", "nosuch"))
    assert "'nosuch'" in line
    assert "postgres, objectstore, backend" in line


@pytest.mark.parametrize("command", [("check",), ("report",)], ids=["check", "report"])
def test_broken_contract_is_one_line_naming_file_and_key_before_the_engine(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    contract = project / "contracts" / "ignition.toml"
    text = contract.read_text(encoding="utf-8")
    contract.write_text(text.replace('text = "Ignition API"', 'txet = "Ignition API"'), "utf-8")
    line = one_config_line(*cli(monkeypatch, capsys, *command))
    # the reference contract extends the broken file, and the error points at that file
    assert line.startswith("Config error: contracts/ignition.toml: "), line
    assert "check → route.root → step[0] → txet: unknown key; did you mean `text`?" in line


def test_profile_contract_key_points_at_its_own_file(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "profiles" / "mine.toml").write_text(
        'extends = "local"\n[services.backend]\ncontract = "../contracts/mine.toml"\n',
        encoding="utf-8",
    )
    (project / "contracts" / "mine.toml").write_text(
        '[[check]]\nid = "route.root"\nname = "root"\nlevel = "optional"\n'
        '[[check.step]]\npath = "/"\n',
        encoding="utf-8",
    )
    line = one_config_line(*cli(monkeypatch, capsys, "check", "--profile", "mine"))
    assert line.startswith("Config error: contracts/mine.toml: check → route.root → level: ")
    assert "unknown value 'optional'" in line


def test_missing_contract_file_names_the_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a missing default falls back to devenv's packaged copy; a named file must exist
    chosen = "services.backend.contract=contracts/nope.toml"
    line = one_config_line(*cli(monkeypatch, capsys, "check", "--set", chosen))
    assert line.startswith("Config error: contracts/nope.toml: cannot read the route contract")
    assert "services.backend.contract" in line


def test_valid_config_reaches_the_engine_check(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control case: the copied project is valid, so the closed DOCKER_HOST is what fails."""
    code, err = cli(monkeypatch, capsys, "up", "--dry-run")
    assert code == 4, err
    assert err.startswith("Docker unavailable:"), err
    assert "Traceback" not in err
