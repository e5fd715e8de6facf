"""A developer's machine: not root, no cargo, an engine that pulls Docker Hub names through the
lab's mirror. From a fresh copy, the README's `make up` reaches a verified stack on the official
images (pulled, no debootstrap, no stand-in built) and installs no test tool; the stack keeps
its data across down/up and snapshots, reset and the major-version guard hold on the official
Postgres image. Offline (`--pull never`) root gets the stand-ins; the user a rootless base or
one line saying what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devenv.config.profiles import SETTINGS
from tests.lab import lab

POSTGRES = "postgres:15.10-bookworm"
MINIO = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
SLIM = "debian:bookworm-slim"
BASE = "devenv-standin/bookworm-base:1"
STANDINS = ("devenv-standin/postgres:15", "devenv-standin/objectstore:1")
TEST_TOOLS = ("pytest", "selenium", "mypy", "ruff", "boto3", "hypothesis", "xdist")
ARTIFACTS = Path(os.environ.get("DEVENV_ARTIFACTS") or lab.REPO / "artifacts")


def container_builds() -> bool:
    """Whether this devenv builds the backend in a container (services.backend.build)."""
    return "build" in SETTINGS["backend"]["local"]


@dataclass
class Checkout:
    """A fresh copy of the checkout in devlab's home, and the project it runs."""

    path: Path
    project: str
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, object] = field(default_factory=dict)

    def run(self, command: str, timeout: float = 1800) -> tuple[int, str, str]:
        env = {"DEVENV_PROJECT": self.project, **self.env}
        proc = lab.as_user(command, cwd=self.path, env=env, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr

    def devenv(self, *args: str, timeout: float = 900) -> tuple[int, str, str]:
        return self.run(" ".join([".venv/bin/devenv", *args]), timeout=timeout)

    def ok(self, *args: str) -> str:
        rc, out, err = self.devenv(*args)
        assert rc == 0, f"devenv {' '.join(args)} exited {rc}\n{out}\n{err}"
        return out


@pytest.fixture(scope="module")
def checkout(lab_ready: lab.LabEngine) -> Iterator[Checkout]:
    """devlab's fresh copy; afterwards its stack, volumes and copy are gone."""
    project = f"lab-{uuid.uuid4().hex[:8]}"
    path = lab.home() / f"devenv-{project}"
    made = Checkout(path, project)
    backend = f"devenv-labtest/backend:{project}"
    main = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DEVENV_ROOT")}
    try:
        lab.fresh_copy(path)
        if not container_builds():
            # Until devenv builds the backend in a container (issue 19, build modes), the
            # user's backend is an image built here (root, cargo), loaded into their engine
            # just before `up` needs it (see `load_backend`).
            built = subprocess.run(
                [sys.executable, "-m", "devenv", "images", "build", "backend"],
                cwd=lab.REPO, capture_output=True, text=True, check=False, env=main,
            )  # fmt: skip
            assert built.returncode == 0, built.stderr
            # `backend  built devenv-standin/backend:src-…` (or `… present`): held under a tag
            # of this test's own, which no other build's pruning touches
            ref = next(w for w in built.stdout.split() if w.startswith("devenv-standin/backend:"))
            subprocess.run(["docker", "tag", ref, backend], check=True, env=main)
            made.env = {
                "DEVENV_BACKEND_IMAGE": backend,
                "DEVENV_BACKEND_MIGRATIONS": str(path / "backend" / "migrations"),
            }
        yield made
    finally:
        if (path / ".venv").is_dir():
            made.devenv("down", "--volumes", "--yes")
        lab_ready.remove_project(project)
        lab_ready.remove_image(backend)
        subprocess.run(["docker", "rmi", backend], capture_output=True, check=False, env=main)
        shutil.rmtree(path, ignore_errors=True)


def load_backend(engine: lab.LabEngine, checkout: Checkout) -> None:
    """The backend image the checkout runs (without container builds), loaded now."""
    backend = checkout.env.get("DEVENV_BACKEND_IMAGE")
    if backend is not None and not engine.has(backend):
        engine.load_from_main(backend)


def _absent(engine: lab.LabEngine, ref: str) -> bool:
    """Remove `ref` from the lab engine so that `up` must pull it, unless a container of any
    project uses it (then it stays, and `up` finds it present)."""
    return engine.remove_image(ref)


def test_a_users_make_up_pulls_the_official_images_and_reaches_a_verified_stack(
    lab_ready: lab.LabEngine, checkout: Checkout
) -> None:
    must_pull = {ref: _absent(lab_ready, ref) for ref in (POSTGRES, MINIO)}
    base_before = lab_ready.has(BASE)
    # `make up` in two parts, the image the backend runs loaded between them (a shared
    # engine: loaded earlier, it may be gone by then)
    started = time.monotonic()
    rc, out, err = checkout.run("make venv")
    assert rc == 0, out + err
    venv = time.monotonic() - started
    load_backend(lab_ready, checkout)
    started = time.monotonic()
    rc, out, err = checkout.run("make up")
    up = time.monotonic() - started
    checkout.timings |= {"venv_seconds": round(venv, 1), "up_seconds": round(up, 1)}
    checkout.timings["make_up_seconds"] = round(venv + up, 1)
    checkout.timings["pulled"] = [ref for ref, absent in must_pull.items() if absent]
    said = out + err
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "lab-first-run.log").write_text(said)
    assert rc == 0, said
    for ref, absent in must_pull.items():
        service = "postgres" if ref == POSTGRES else "objectstore"
        if absent:
            assert f"{service}  pulled {ref} (" in said, said
    assert "debootstrap" not in said
    assert "building the stand-in" not in said
    assert base_before or not lab_ready.has(BASE)
    # nothing but devenv's runtime dependencies in the venv, no browser asked for
    rc, out, err = checkout.run(
        ".venv/bin/python -c 'import importlib.util as u; "
        f"print([m for m in {json.dumps(TEST_TOOLS)} if u.find_spec(m)])'"
    )
    assert rc == 0, err
    assert out.strip() == "[]", out
    assert "chromium" not in said
    assert "apt-get" not in said

    status = json.loads(checkout.ok("status", "--json"))
    assert all(s["healthy"] for s in status["services"]), status
    images = {s["name"]: s["image"] for s in status["services"]}
    assert images["postgres"] == POSTGRES
    assert images["objectstore"] == MINIO
    checkout.ok("check")
    report = json.loads(checkout.ok("report", "--format", "json"))
    assert {"11", "14"} <= set(report["summary"]["can_proceed_locally"]), report["summary"]
    assert report["summary"]["failed"] == 0

    checkout.timings["pulls"] = [
        line.split("]", 1)[-1].strip() for line in said.splitlines() if "  pulled " in line
    ]
    (ARTIFACTS / "lab-first-run.json").write_text(json.dumps(checkout.timings, indent=2))


def _sql(checkout: Checkout, statement: str) -> list[str]:
    """Run one statement as the user, with devenv's own psycopg, on the project's database."""
    script = (
        "import json, subprocess, sys, psycopg\n"
        "status = json.loads(subprocess.run(['.venv/bin/devenv', 'status', '--json', "
        "'--show-secrets'], capture_output=True, text=True).stdout)\n"
        "url = next(s['url'] for s in status['services'] if s['name'] == 'postgres')\n"
        "with psycopg.connect(url, autocommit=True) as conn:\n"
        "    conn.execute('CREATE TABLE IF NOT EXISTS lab_rows (v text)')\n"
        "    cur = conn.execute(sys.argv[1])\n"
        "    print(json.dumps([r[0] for r in cur.fetchall()] if cur.description else []))\n"
    )
    (checkout.path / "lab_sql.py").write_text(script)
    shutil.chown(checkout.path / "lab_sql.py", lab.USER, lab.USER)
    rc, out, err = checkout.run(f'.venv/bin/python lab_sql.py "{statement}"')
    assert rc == 0, err
    found: list[str] = json.loads(out.strip().splitlines()[-1])
    return found


def test_the_official_postgres_keeps_data_and_snapshots_like_the_standin(
    lab_ready: lab.LabEngine, checkout: Checkout
) -> None:
    if "pgdata" not in " ".join(lab_ready.labelled("volume", checkout.project)):
        pytest.skip("needs the stack of the make-up test")
    logs = lab_ready.docker("logs", f"{checkout.project}-postgres")
    # the official entrypoint's first start: initdb, a socket-only server for the init
    # scripts, then the real one; the probe answered only the real one
    assert "PostgreSQL init process complete; ready for start up." in logs
    _sql(checkout, "INSERT INTO lab_rows VALUES ('before-down')")
    checkout.ok("down")
    assert lab_ready.labelled("ps", checkout.project) == []
    load_backend(lab_ready, checkout)
    checkout.ok("up")
    assert _sql(checkout, "SELECT v FROM lab_rows ORDER BY v") == ["before-down"]

    checkout.ok("snapshot", "save", "s1")
    _sql(checkout, "INSERT INTO lab_rows VALUES ('after-save')")
    checkout.ok("snapshot", "restore", "s1")
    assert _sql(checkout, "SELECT v FROM lab_rows ORDER BY v") == ["before-down"]
    checkout.ok("reset")  # the golden state was taken before lab_rows existed
    assert _sql(checkout, "SELECT v FROM lab_rows") == []

    # the major-version guard reads the official image's PG_MAJOR as it reads the stand-in's
    major = f"devenv-labtest/pg16:{checkout.project}"
    holder = lab_ready.docker("create", POSTGRES).strip()
    try:
        lab_ready.docker("commit", "--change", "ENV PG_MAJOR=16", holder, major)
    finally:
        lab_ready.docker("rm", "-f", holder)
    compose = checkout.path / "compose" / "compose.yaml"
    original = compose.read_text()
    try:
        compose.write_text(original.replace(f"image: {POSTGRES}", f"image: {major}"))
        load_backend(lab_ready, checkout)
        rc, out, err = checkout.devenv("up")
        assert rc == 9, out + err
        assert "Postgres 15 data directory" in err
        assert "Postgres 16" in err
        assert "Traceback" not in err
    finally:
        compose.write_text(original)
        lab_ready.remove_image(major)
    assert _sql(checkout, "SELECT count(*)::text FROM lab_rows") == ["0"]


def offline(compose: Path) -> str:
    """compose.yaml with `pull_policy: build` on the two services that have official images:
    their stand-ins, whatever the engine holds (the lab engine is shared and keeps them)."""
    text = compose.read_text()
    for image in (POSTGRES, MINIO):
        text = text.replace(
            f"    image: {image}\n", f"    image: {image}\n    pull_policy: build\n"
        )
    return text


def test_offline_the_user_gets_one_line_saying_what_to_do(
    lab_ready: lab.LabEngine, checkout: Checkout
) -> None:
    checkout.run("make venv")
    compose = checkout.path / "compose" / "compose.yaml"
    original = compose.read_text()
    other = f"{checkout.project}-off"
    try:
        compose.write_text(offline(compose))
        rc, out, err = checkout.run(f"DEVENV_PROJECT={other} .venv/bin/devenv up --pull never")
    finally:
        compose.write_text(original)
        lab_ready.remove_project(other)
    assert rc == 5, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Image error:"), err
    assert "(fix: " in last
    assert "Traceback" not in err
    assert "sudo .venv/bin/devenv" not in err  # the hint that could not work is gone
    assert lab_ready.labelled("ps", other) == []  # refused before anything changed
    assert lab_ready.labelled("volume", other) == []


def test_offline_the_user_builds_the_base_without_root_where_the_kernel_allows(
    lab_ready: lab.LabEngine, checkout: Checkout
) -> None:
    checkout.run("make venv")
    # the offline base is what `images build base --pull never` makes when the engine has no
    # debian:bookworm-slim (present, it would be the base): both must go, unless in use
    had = lab_ready.has(BASE)
    for ref in (BASE, SLIM):
        if not lab_ready.remove_image(ref):
            pytest.skip(f"{ref} is in use on the lab engine: cannot prove a build")
    rootless = all(shutil.which(t) for t in ("mmdebstrap", "newuidmap", "newgidmap")) and all(
        f"{lab.USER}:" in Path(f"/etc/sub{kind}").read_text() for kind in ("uid", "gid")
    )
    try:
        rc, out, err = checkout.devenv("images", "build", "base", "--pull", "never", timeout=1200)
        if not rootless:
            assert rc == 5, out + err
            last = err.strip().splitlines()[-1]
            assert "mmdebstrap" in last
            assert "(fix: " in last
            return
        assert rc == 0, out + err
        assert "mmdebstrap --mode=unshare" in out + err
        labels = json.loads(
            lab_ready.docker("image", "inspect", "--format", "{{json .Config.Labels}}", BASE)
        )
        assert labels["io.devenv.glibc"].startswith("2.36")
    finally:
        if not had:
            lab_ready.remove_image(BASE)


def _backend_tags(engine: lab.LabEngine) -> set[str]:
    out = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    return {ref for ref in out.split() if ref.startswith("devenv-standin/backend")}


def test_offline_root_gets_the_standin_path(lab_ready: lab.LabEngine, tmp_path: Path) -> None:
    """Root, with its cargo, on a copy whose compose file asks for the stand-ins (the checkout's
    recipes and backend are the repository's own, linked)."""
    root = tmp_path / "root"
    (root / "compose").mkdir(parents=True)
    (root / "compose" / "compose.yaml").write_text(offline(lab.REPO / "compose" / "compose.yaml"))
    (root / "compose" / "images").symlink_to(lab.REPO / "compose" / "images")
    (root / "backend").symlink_to(lab.REPO / "backend")
    for tree in ("profiles", "contracts"):
        shutil.copytree(lab.REPO / tree, root / tree)
    project = f"lab-{uuid.uuid4().hex[:8]}-root"
    before = {ref: lab_ready.has(ref) for ref in (*STANDINS, BASE)}  # children first
    backends = _backend_tags(lab_ready)
    env = {"DEVENV_PROJECT": project, "DEVENV_ROOT": str(root)}
    devenv = lab.REPO / ".venv" / "bin" / "devenv"
    try:
        proc = lab.as_root(f"{devenv} up --pull never", cwd=root, env=env)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 0, said
        status = lab.as_root(f"{devenv} status --json", cwd=root, env=env)
        services = {s["name"]: s for s in json.loads(status.stdout)["services"]}
        assert all(s["healthy"] for s in services.values()), services
        assert services["postgres"]["image"] == STANDINS[0]
        assert services["objectstore"]["image"] == STANDINS[1]
        assert "pulled" not in said
        if not before[STANDINS[0]]:
            assert "pull policy build: building the stand-in devenv-standin/postgres:15" in said
    finally:
        lab.as_root(f"{devenv} down --volumes --yes", cwd=root, env=env)
        lab_ready.remove_project(project)
        for ref in sorted(_backend_tags(lab_ready) - backends, key=lambda r: "runtime" in r):
            lab_ready.remove_image(ref)
        for ref, was in before.items():
            if not was:
                lab_ready.remove_image(ref)
