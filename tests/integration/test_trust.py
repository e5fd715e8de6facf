"""Trust on a shared machine, on real components: secrets never on a command line (stand-ins,
devenv's own children), a password with HTML/JSON/XML-special characters masked in every output,
a profile's protection that the environment cannot lower, probes that leave the store as they
found it. (The dashboard's sign-in is in test_ui.py, the plugin's owners in test_pytest_plugin.)"""

from __future__ import annotations

import html
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.conftest import Stack, copy_project

# --- helpers -------------------------------------------------------------------------------


def _host_command_lines() -> dict[int, str]:
    """Every process's command line on this machine (containers' processes included: root
    sees them all), arguments joined by spaces."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        found[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return found


READ_CMDLINES = 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done'


def _container_command_lines(container: Any) -> list[str]:
    """Command lines as the container itself sees them (its own PID namespace)."""
    code, out = container.exec_run(["sh", "-c", READ_CMDLINES])
    assert code == 0, out
    return [line for line in out.decode(errors="replace").splitlines() if line.strip()]


def _data_entries(stack: Stack) -> list[str]:
    """Every entry under the object store's /data, read inside its container by the engine."""
    code, out = stack.container("objectstore").exec_run(["find", "/data"])
    assert code == 0, out
    return sorted(out.decode().split("\n")[:-1])


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail(f"devenv ui printed nothing within {timeout} s")
    return proc.stdout.readline()


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


# --- no secret on a command line -----------------------------------------------------------


def test_no_generated_secret_on_any_command_line(shared_stack: Stack, tmp_path: Path) -> None:
    secrets = [v for v in shared_stack.state()["credentials"].values() if v]
    assert len(secrets) >= 3  # the postgres password, the storage key id and secret
    # a browser that devenv ui starts: it records what it was given and stays up
    said = tmp_path / "browser-args"
    browser = tmp_path / "browser"
    browser.write_text(
        f'#!/bin/sh\necho "$$ $*" > {said}.tmp && mv {said}.tmp {said}\nexec sleep 120\n'
    )
    browser.chmod(0o700)
    ui = subprocess.Popen(
        [sys.executable, "-m", "devenv", "ui", "--json"],
        cwd=shared_stack.root,
        env=shared_stack.env(BROWSER=str(browser)),  # webbrowser runs it with the URL
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    browser_pid = None
    try:
        login = json.loads(_first_line(ui, 30))["url"]
        token = login.split("token=", 1)[1]
        deadline = time.monotonic() + 30
        while not said.exists():
            assert ui.poll() is None, ui.communicate()[1]
            assert time.monotonic() < deadline, "devenv ui never started the browser"
            time.sleep(0.05)  # another process's progress
        pid, argument = said.read_text().split()
        browser_pid = int(pid)

        host = _host_command_lines()
        containers = {
            c.labels["io.devenv.service"]: _container_command_lines(c)
            for c in shared_stack.containers()
        }
        # the scans saw the stack's servers, on the host and inside each container
        assert any("devenv-objectstore server /data" in line for line in host.values())
        assert any(line.startswith("postgres") for line in containers["postgres"])
        assert any("devenv-objectstore" in line for line in containers["objectstore"])
        assert containers["backend"]
        everything = [*host.values(), *(line for lines in containers.values() for line in lines)]
        for secret in [*secrets, token]:
            for line in everything:
                assert secret not in line, line.split()[0]

        # the browser got a private file that forwards to the link, not the link itself
        assert argument.startswith("file://")
        launcher = Path(argument.removeprefix("file://"))
        assert stat.S_IMODE(launcher.stat().st_mode) == 0o600
        assert html.escape(login) in launcher.read_text()
        assert httpx.get(login, timeout=10).status_code == 200  # signing in...
        assert not launcher.exists()  # ...spends the link and removes the file
    finally:
        if browser_pid is not None:
            os.kill(browser_pid, signal.SIGTERM)
        err = _stop(ui)
        assert "Traceback" not in err, err


# --- a password with every special character, masked everywhere -----------------------------


@pytest.fixture
def odd_stack(make_stack: Callable[..., Stack], tmp_path: Path) -> tuple[Stack, str]:
    """A stack whose backend really gets a secret holding & ' " < > \\ (through the user's
    own override profile and an environment variable), and whose Postgres log quotes it."""
    marker = f"Zq{uuid.uuid4().hex[:8]}"
    secret = marker + ODD_TAIL
    root = copy_project(tmp_path / "project")
    (root / "profiles" / "local.local.toml").write_text(
        '[services.backend.env]\nAPP_SIGNING_KEY = "${SIGNING_KEY}"\n'
    )
    stack = make_stack(root, SIGNING_KEY=secret)
    stack.up()
    env = dict(e.split("=", 1) for e in stack.container("backend").attrs["Config"]["Env"])
    assert env["APP_SIGNING_KEY"] == secret  # the stack really uses it
    with psycopg.connect(stack.database_url(), autocommit=True, connect_timeout=10) as conn:
        # older lines out of the 40 a dead container's check reads its first error from
        conn.execute("DO $$ BEGIN FOR i IN 1..45 LOOP RAISE LOG 'filler %', i; END LOOP; END $$")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT %s::int", (secret,))  # Postgres logs the value it refused
    return stack, marker


ODD_TAIL = "&Secret'pw\"<x>\\y"  # after a unique marker: every character markup escapes


def _spellings(marker: str) -> list[str]:
    from markupsafe import escape

    secret = marker + ODD_TAIL
    return [secret, html.escape(secret), str(escape(secret)), json.dumps(secret)[1:-1], marker]


def _events(client: httpx.Client, url: str, until: Callable[[dict[str, str]], bool]) -> str:
    """The event stream's text until `until(latest data by event)` holds."""
    seen: dict[str, str] = {}
    text = ""
    deadline = time.monotonic() + 120
    with client.stream("GET", url + "events") as stream:
        event = ""
        for line in stream.iter_lines():
            text += line + "\n"
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                seen[event] = ""
            elif line.startswith("data: "):
                seen[event] = seen.get(event, "") + line + "\n"
            if not line and until(seen):
                return text
            assert time.monotonic() < deadline, f"stream never got there: {sorted(seen)}"
    return text


def test_a_password_with_markup_characters_never_shows(
    odd_stack: tuple[Stack, str], tmp_path: Path
) -> None:
    stack, marker = odd_stack
    outputs: dict[str, str] = {}

    logs = stack.cli("logs", "postgres", "--tail", "200")
    assert "invalid input syntax for type integer" in logs.stdout
    assert '"****"' in logs.stdout  # the line Postgres wrote, the value masked
    outputs["logs"] = logs.stdout + logs.stderr
    status = stack.cli("status", "--json")
    backend = next(s for s in json.loads(status.stdout)["services"] if s["name"] == "backend")
    assert backend["env"] == {"APP_SIGNING_KEY": "****"}
    outputs["status --json"] = status.stdout + status.stderr

    ui = subprocess.Popen(
        [sys.executable, "-m", "devenv", "ui", "--no-browser", "--json"],
        cwd=stack.root,
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        login = json.loads(_first_line(ui, 30))["url"]
        base = login.split("login?", 1)[0]
        with httpx.Client(timeout=httpx.Timeout(10, read=60)) as client:
            assert client.get(login).status_code == 200  # signed in: the cookie is in the jar
            page = client.get(base).text
            outputs["dashboard page"] = page
            shown = client.get(base + "logs/postgres").text
            assert "invalid input syntax for type integer: &#34;****&#34;" in shown
            outputs["dashboard logs"] = shown

            # a dead Postgres: its last error (quoting the value) becomes the check's detail
            stack.container("postgres").stop(timeout=30)
            check = stack.cli("check", "--junit", str(tmp_path / "junit.xml"), check=False)
            assert check.returncode == 1, check.stderr
            junit = (tmp_path / "junit.xml").read_text()
            assert "invalid input syntax for type integer: &quot;****&quot;" in junit
            outputs["check --junit"] = junit + check.stdout + check.stderr
            report = stack.cli("report", "--format", "markdown", check=False)
            assert report.returncode == 1, report.stderr
            assert 'invalid input syntax for type integer: "****"' in report.stdout
            outputs["report --format markdown"] = report.stdout + report.stderr

            token = page.split('name="devenv-token" content="', 1)[1].split('"', 1)[0]
            headers = {"X-Devenv-Token": token, "Origin": base.rstrip("/")}
            deadline = time.monotonic() + 120
            while (
                started := client.post(base + "actions/checks", headers=headers)
            ).status_code == 409:
                assert time.monotonic() < deadline, "the startup check run never ended"
                time.sleep(0.2)  # the startup run still holds the action slot
            assert started.status_code == 202, started.text

            def rerun_shown(seen: dict[str, str]) -> bool:
                checks = seen.get("checks", "")
                return 'data-result="fail"' in checks and "****" in checks

            outputs["dashboard events"] = _events(client, base, rerun_shown)
            outputs["dashboard page after"] = client.get(base).text
    finally:
        err = _stop(ui)
        assert "Traceback" not in err, err
    assert "****" in outputs["dashboard events"]
    for where, text in outputs.items():
        for spelled in _spellings(marker):
            assert spelled not in text, f"the password shows in {where}"


# --- protection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra_env", "args", "named"),
    [
        ({"DEVENV_POSTGRES_PROTECTED": "false"}, (), "DEVENV_POSTGRES_PROTECTED"),
        ({}, ("--set", "services.postgres.protected=false"), "--set services.postgres.protected"),
    ],
)
def test_a_protected_provider_cannot_be_unprotected_from_outside_a_profile(
    make_stack: Callable[..., Stack], extra_env: dict[str, str], args: tuple[str, ...], named: str
) -> None:
    url = "postgres://ignition:Pw-0123456789@127.0.0.1:1/ignition"
    stack = make_stack(DEVENV_HYBRID_DATABASE_URL=url, **extra_env)
    proc = stack.cli("up", "--profile", "hybrid", *args, check=False, timeout=120)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"Config error: {named}")
    assert "services.postgres.protected" in lines[0]
    assert "profiles/hybrid.toml" in lines[0]
    assert "Pw-0123456789" not in proc.stdout + proc.stderr
    assert stack.containers() == []  # nothing started
    assert stack.volumes() == []
    assert not (stack.root / ".devenv" / stack.project / "state.json").exists()


# --- probes leave nothing behind -----------------------------------------------------------


def test_a_thousand_probes_leave_the_store_as_they_found_it(shared_stack: Stack) -> None:
    from devenv.config.load import Options, load_config
    from devenv.observe import current
    from devenv.probes.clients import StackClients

    options = Options(
        root=shared_stack.root, project=shared_stack.project, environ=shared_stack.env()
    )
    clients = StackClients(current(load_config(options), None)[1])
    before = _data_entries(shared_stack)
    round_trip = clients.probe("objectstore")  # what `up` and `check` prove a write with
    liveness = clients.probe("objectstore", write=False)  # what `status` and the dashboard ask
    for _ in range(1000):
        assert round_trip.attempt() == "put/get/delete round trip ok"
    for _ in range(1000):
        assert liveness.attempt() == "bucket readable (read-only probe: liveness only)"
    for _ in range(3):
        shared_stack.cli("status")
    shared_stack.cli("check", check=False)
    assert _data_entries(shared_stack) == before
    assert "/data/.devenv-probe" not in "\n".join(before)  # no probe directory left either


def test_the_stand_in_sweeps_sidecars_an_older_one_left(make_stack: Callable[..., Stack]) -> None:
    """s3s-fs alone left two files per deleted object; the stand-in removes them at start."""
    import base64

    stack = make_stack()
    stack.up()
    container = stack.container("objectstore")
    stem = "/data/.bucket-{}.object-{}".format(
        *(base64.urlsafe_b64encode(s.encode()).decode().rstrip("=") for s in ("ignition", "gone"))
    )
    code, out = container.exec_run(["touch", f"{stem}.metadata.json", f"{stem}.internal.json"])
    assert code == 0, out
    leaked = _data_entries(stack)
    assert f"{stem}.internal.json" in leaked
    container.restart(timeout=30)
    deadline = time.monotonic() + 30
    while container.reload() or container.status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)  # the engine's state
    assert stack.service("objectstore")["healthy"]
    after = _data_entries(stack)
    assert f"{stem}.metadata.json" not in after
    assert f"{stem}.internal.json" not in after
    assert "removed 2 sidecar file(s)" in container.logs().decode()


def test_the_stand_in_accepts_minios_command_line_and_no_secret_flags(shared_stack: Stack) -> None:
    container = shared_stack.container("objectstore")
    container.reload()
    assert container.attrs["Args"][:2] == ["server", "/data"]  # compose's MinIO command line
    assert "--console-address" in container.attrs["Args"]
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert env["MINIO_ROOT_PASSWORD"] == shared_stack.state()["credentials"]["storage_secret_key"]
    assert shared_stack.service("objectstore")["healthy"]
