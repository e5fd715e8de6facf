"""The pure layers import none of the heavy adapters, so `devenv --help` stays fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.imports import importing, loaded_after

PURE = [
    "devenv.plan",
    "devenv.stack",
    "devenv.graph",
    "devenv.config.load",
    "devenv.images.choice",
    "devenv.images.identity",
    "devenv.execute",
    "devenv.console",
    "devenv.report.data",
    "devenv.checks.ids",
    "devenv.phases.registry",
    "devenv.phases.evaluate",
    "devenv.report.json_report",
    "devenv.report.table",
    "devenv.report.markdown",
    "devenv.checks.contract",
    "devenv.checks.spec",
    "devenv.checks.engine",
    "devenv.checks.services",
    "devenv.checks.scaffold",
    "devenv.checks.junit",
    "devenv.watch.paths",
    "devenv.watch.cycle",
]
HEAVY = ["docker", "requests", "httpx", "psycopg", "boto3", "rich", "typer", "watchfiles"]
# what a status or a no-op up of local stand-ins runs: the engine adapter and the probes
PATHS = [
    "devenv.cli.main",
    "devenv.app",
    "devenv.observe",
    "devenv.runtime.docker",
    "devenv.probes.clients",
]


def test_pure_modules_do_not_import_heavy_libraries() -> None:
    assert loaded_after(importing(PURE), HEAVY) == []


def test_the_status_path_loads_neither_the_docker_sdk_nor_pydantic() -> None:
    assert loaded_after(importing(PATHS), ["docker", "requests", "httpx", "watchfiles"]) == []


def test_every_declared_dependency_is_imported_by_devenv() -> None:
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    modules = {"pyyaml": "yaml", "pyelftools": "elftools", "sse-starlette": "sse_starlette"}
    source = "\n".join(p.read_text() for p in (root / "devenv").rglob("*.py"))
    for requirement in declared:
        name = re.split(r"[\[<>=]", requirement, maxsplit=1)[0].strip().lower()
        module = modules.get(name, name)
        assert re.search(rf"^\s*(import|from) {module}\b", source, re.M), requirement


def test_parsing_a_command_s_options_loads_no_pydantic() -> None:
    """typer 0.29 coerces options through pydantic (about 80 ms a command): held off."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('LOADED' if 'pydantic' in sys.modules else ''))\n"
        "sys.argv = ['devenv', 'config', '--project', 'p', '--set', 'seed.enabled=true']\n"
        "from devenv.cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        env={"PYTHONPATH": str(root), "DEVENV_ROOT": str(root)},
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED" not in done.stderr
