"""devenv installed the way a user installs it, and several stacks at once.

- A wheel built from this checkout, installed in a fresh virtual environment outside it, run in
  an empty directory that holds only a profile pointing at a backend checkout: `devenv up`
  brings that backend's stack up from the packaged defaults; `devenv init` then writes files
  that `devenv config` accepts.
- Two clones of the repository up at once (each builds its own backend image): `devenv ls
  --json` lists both with their checkouts, ports and health, from a directory that is neither;
  `devenv down --project` from there removes one and leaves the other running.
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

from tests.integration.conftest import REPO, Stack, unique_project
from tests.integration.test_backend_sources import (  # noqa: F401 (fixtures)
    _copies_env,
    built_images,
    copies_target,
)

pytestmark = pytest.mark.timeout(1800)


def _clean_env(**more: str) -> dict[str, str]:
    """The user's environment: no DEVENV_* of the test run, no PYTHONPATH into this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEVENV_", "PYTHON", "VIRTUAL_ENV")) or k == "DEVENV_CACHE"
    }
    env.update(more)
    return env


def _run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with devenv installed from a wheel of this checkout (its
    dependencies pinned by constraints.txt); its bin/ directory."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _ok(
        _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)],
            base,
            _clean_env(),
        )
    )
    (wheel,) = dist.glob("ignition_devenv-*.whl")
    venv = base / "venv"
    _ok(_run([sys.executable, "-m", "venv", str(venv)], base, _clean_env()))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _ok(_run([*pip, "-c", str(REPO / "constraints.txt"), str(wheel)], base, _clean_env()))
    return venv / "bin"


def test_the_wheel_runs_a_stack_from_its_packaged_defaults(
    installed: Path, images: None, tmp_path: Path
) -> None:
    work = tmp_path / "team-repo"  # outside the checkout, nothing of devenv's in it
    work.mkdir()
    profile = work / "backend.toml"
    profile.write_text(
        f'description = "the reference backend, elsewhere"\n\n'
        f'[services.backend]\ncontext = "{os.path.relpath(REPO / "backend", work)}"\n',
        encoding="utf-8",
    )
    project = unique_project("whl")
    env = _clean_env(DEVENV_PROJECT=project)
    devenv = str(installed / "devenv")

    where = _ok(_run([str(installed / "python"), "-c", "import devenv; print(devenv.__file__)"],
                     work, env)).stdout.strip()  # fmt: skip
    assert where.startswith(str(installed.parent)), where  # the wheel's devenv, not this checkout's
    version = _ok(_run([devenv, "--version"], work, env)).stdout.split()
    assert version[0] == "devenv"

    cleanup = Stack(project=project, root=work)
    try:
        said = _ok(_run([devenv, "-v", "config", "--profile", "./backend.toml"], work, env))
        assert "[debug] compose file compose/compose.yaml (packaged)" in said.stderr
        _ok(_run([devenv, "up", "--profile", "./backend.toml"], work, env))
        status = _run([devenv, "status", "--json", "--profile", "./backend.toml"], work, env)
        data = json.loads(status.stdout)
        assert status.returncode == 0, status.stderr
        assert {s["name"]: s["healthy"] for s in data["services"]} == {
            "postgres": True,
            "objectstore": True,
            "backend": True,
        }
        assert data["devenv_version"] == version[1]
        assert (work / ".devenv" / project / "state.json").is_file()  # the state lives here
        listed = json.loads(_ok(_run([devenv, "ls", "--json", "-p", project], work, env)).stdout)
        (stack,) = listed["stacks"]
        assert (stack["checkout"], stack["profile"]) == (str(work), str(profile))
        assert stack["healthy"] is True

        # the starter files a team commits: config accepts them, a second init refuses
        started = _ok(_run([devenv, "init", "--backend", str(REPO / "backend")], work, env))
        assert "wrote compose/compose.yaml" in started.stdout
        assert (work / "profiles" / "local.toml").is_file()
        config = _ok(_run([devenv, "-v", "config", "--json"], work, env))
        assert "[debug] compose file compose/compose.yaml\n" in config.stderr  # its own now
        values = {v["key"]: v["value"] for v in json.loads(config.stdout)["values"]}
        assert Path(values["services.backend.context"]) == REPO / "backend"
        again = _run([devenv, "init"], work, env)
        assert again.returncode == 9, again.stderr
    finally:
        down = _run([devenv, "down", "--volumes", "--yes"], work, env, timeout=180)
        cleanup.destroy()
    assert down.returncode == 0, down.stderr
    assert not cleanup.containers()
    assert not cleanup.volumes()


# --- two clones at once -------------------------------------------------------------------------


@pytest.fixture
def clones(
    built_images: None,  # noqa: F811 (a fixture)
    make_stack: Callable[..., Stack],
    copies_target: Path,  # noqa: F811
    tmp_path: Path,
) -> list[Stack]:
    """Two clones of this repository's last commit, each a project named after its directory
    (as a worktree is), each building its own backend in the shared copies' target dir."""
    made: list[Stack] = []
    for _ in range(2):
        project = unique_project("clone")
        dest = tmp_path / project
        _ok(_run(["git", "clone", "-q", str(REPO), str(dest)], tmp_path, _clean_env()))
        stack = make_stack(root=dest, **_copies_env(copies_target))
        stack.project = project  # the directory's name, as devenv would choose it
        made.append(stack)
    return made


def test_ls_lists_two_clones_up_at_once(clones: list[Stack], tmp_path: Path) -> None:
    for stack in clones:
        env = {k: v for k, v in stack.env().items() if k != "DEVENV_PROJECT"}
        stack.cli("up", env=env, timeout=1500)  # the project is the clone's directory name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(PYTHONPATH=str(REPO))
    ls = _ok(_run([sys.executable, "-m", "devenv", "ls", "--json"], elsewhere, env))
    stacks: dict[str, Any] = {s["project"]: s for s in json.loads(ls.stdout)["stacks"]}
    ports: list[int] = []
    for stack in clones:
        row = stacks[stack.project]
        assert row["checkout"] == str(stack.root)
        assert row["profile"] == "local"
        assert row["state"] == "running"
        assert row["healthy"] is True
        assert row["ports"] == stack.state()["ports"]
        assert {s["name"] for s in row["services"]} == {"postgres", "objectstore", "backend"}
        ports += row["ports"].values()
    assert len(set(ports)) == 6  # each stack on ports of its own

    first, second = clones
    down = _ok(_run([sys.executable, "-m", "devenv", "down", "--project", first.project],
                    elsewhere, env))  # fmt: skip
    assert f"project {first.project} lives in {first.root}" in down.stderr
    assert first.containers() == []
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran
    ls = _ok(_run([sys.executable, "-m", "devenv", "ls", "--json"], elsewhere, env))
    stacks = {s["project"]: s for s in json.loads(ls.stdout)["stacks"]}
    assert stacks[first.project]["state"] == "down (data kept)"
    assert stacks[second.project]["healthy"] is True
