"""Security properties of a running stack: loopback only, private state, no leaked secrets,
the dev auth bypass confined to localhost and to unprotected providers, least privilege."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import stat
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import docker
import httpx
import pytest

from tests.integration.conftest import LABEL_PROJECT, REPO, Stack


def _env(container: Any) -> dict[str, str]:
    container.reload()
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


def _non_loopback_ipv4() -> str | None:
    """This machine's first non-loopback IPv4 address, or None when it has none."""
    try:
        out = subprocess.run(
            ["hostname", "-I"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        out = ""
    candidates = out.split()
    with contextlib.suppress(OSError):
        candidates += [
            str(info[4][0])
            for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        ]
    for raw in candidates:
        try:
            addr = ipaddress.ip_address(raw)
        except ValueError:
            continue
        if addr.version == 4 and not addr.is_loopback and not addr.is_unspecified:
            return str(addr)
    return None


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def _published_ports(stack: Stack) -> dict[str, int]:
    return {svc: int(port) for svc, port in stack.state()["ports"].items()}


# --- loopback only -------------------------------------------------------------------------


def test_every_published_port_binds_loopback(shared_stack: Stack) -> None:
    containers = shared_stack.containers()
    assert {c.labels["io.devenv.service"] for c in containers} == {
        "postgres",
        "objectstore",
        "backend",
    }
    for c in containers:
        c.reload()
        if c.attrs["HostConfig"]["NetworkMode"] == "host":
            assert _env(c)["SERVER_HOST"] == "127.0.0.1", c.name
            continue
        bindings = c.attrs["HostConfig"]["PortBindings"] or {}
        assert bindings, c.name
        live = c.attrs["NetworkSettings"]["Ports"] or {}
        assert any(live.values()), (c.name, live)
        for table in (bindings, live):
            for host_list in table.values():
                for b in host_list or []:
                    assert b["HostIp"] == "127.0.0.1", (c.name, table)


def test_nothing_answers_on_a_non_loopback_address(shared_stack: Stack) -> None:
    address = _non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    ports = _published_ports(shared_stack)
    assert set(ports) == {"postgres", "objectstore", "backend"}
    for service, port in ports.items():
        assert _connects("127.0.0.1", port), f"{service} does not listen on loopback"
        assert not _connects(address, port), f"{service} answers on {address}:{port}"


# --- state file ----------------------------------------------------------------------------


def test_state_file_is_private_and_gitignored(shared_stack: Stack) -> None:
    path = shared_stack.root / ".devenv" / shared_stack.project / "state.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    directory = path.parent
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0, oct(directory.stat().st_mode)
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(path.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert ignored.returncode == 0, "state.json is not gitignored"
    control = subprocess.run(
        ["git", "check-ignore", "-q", "compose/compose.yaml"], cwd=REPO, check=False
    )
    assert control.returncode == 1


# --- secrets never printed ----------------------------------------------------------------


def _secrets(stack: Stack) -> list[str]:
    creds = stack.state()["credentials"]
    found = [v for v in creds.values() if v]
    assert len(found) >= 3, creds
    return found


@pytest.mark.parametrize(
    ("args", "codes"),
    [
        (("up",), (0,)),
        (("status",), (0,)),
        (("status", "--json"), (0,)),
        (("config",), (0,)),
        (("config", "--json"), (0,)),
        (("report", "--json"), (0,)),
        (("report", "--format", "markdown"), (0,)),
        (("check", "--json"), (0, 1)),
        (("logs", "--tail", "200"), (0,)),
    ],
)
def test_no_generated_secret_in_output(
    shared_stack: Stack, args: tuple[str, ...], codes: tuple[int, ...]
) -> None:
    proc = shared_stack.cli(*args, check=False, timeout=180)
    assert proc.returncode in codes, proc.stderr
    text = proc.stdout + proc.stderr
    assert text.strip()
    assert "Traceback" not in text
    for secret in _secrets(shared_stack):
        assert secret not in text, f"a credential appears in `devenv {' '.join(args)}`"


def test_provided_password_not_in_failing_up(
    shared_stack: Stack, make_stack: Callable[..., Stack]
) -> None:
    """A hybrid profile whose external Postgres URL has a wrong password: up fails, quietly."""
    password = f"Wr0ng-{uuid.uuid4().hex}"
    port = shared_stack.state()["ports"]["postgres"]
    url = f"postgres://ignition:{password}@127.0.0.1:{port}/ignition"
    s = make_stack(DEVENV_HYBRID_DATABASE_URL=url)

    config = s.cli("config", "--json", "--profile", "hybrid")
    assert password not in config.stdout + config.stderr
    resolved = json.loads(config.stdout)
    assert resolved["dev_bypass"] is False
    assert resolved["protected"] == ["postgres"]

    proc = s.cli("up", "--profile", "hybrid", "--timeout", "20", check=False, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 10, text  # the external provider, verified first, is the cause
    assert "Traceback" not in text
    assert "Provider error: service postgres" in text
    assert password not in text
    assert url not in text
    # its dependent never starts against it (nor is created): nothing of the backend to leak
    assert "backend" not in {c.labels["io.devenv.service"] for c in s.containers()}
    logs = s.cli("logs", check=False)
    assert password not in logs.stdout + logs.stderr


# --- the dev auth bypass -------------------------------------------------------------------


def test_bypass_applies_to_localhost_hosts_only(shared_stack: Stack) -> None:
    port = shared_stack.state()["ports"]["backend"]
    assert _env(shared_stack.container("backend"))["AUTH_DEV_BYPASS"] == "true"
    with httpx.Client(base_url=shared_stack.backend_url(), timeout=10) as client:
        for host in ("example.com", "localhost.example.com", f"localhost.example.com:{port}"):
            r = client.get("/api", headers={"Host": host})
            assert r.status_code == 401, (host, r.status_code, r.text)
        for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
            r = client.get("/api", headers={"Host": host})
            assert r.status_code == 200, (host, r.status_code, r.text)


def test_protected_profile_never_gets_the_bypass(shared_stack: Stack) -> None:
    env = shared_stack.env(DEVENV_HYBRID_DATABASE_URL="postgres://u:Pw-0123456789@127.0.0.1:1/db")
    shown = json.loads(shared_stack.cli("config", "--json", "--profile", "hybrid", env=env).stdout)
    assert shown["dev_bypass"] is False
    refused = shared_stack.cli(
        "config", "--profile", "hybrid", "--set", "auth.dev_bypass=true", env=env, check=False
    )
    assert refused.returncode == 9, refused.stderr
    assert "protected" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    via_env = dict(env, DEVENV_AUTH_DEV_BYPASS="true")
    refused = shared_stack.cli("up", "--dry-run", "--profile", "hybrid", env=via_env, check=False)
    assert refused.returncode == 9, refused.stderr


def test_backend_refuses_bypass_in_production(shared_stack: Stack) -> None:
    engine = docker.from_env(version="auto")
    image = shared_stack.container("backend").attrs["Image"]  # the shared stack's own build
    container = engine.containers.run(
        image,
        name=f"t-bypass-prod-{uuid.uuid4().hex[:8]}",
        detach=True,
        network_mode="none",
        environment={
            "DATABASE_URL": "postgres://x:y@127.0.0.1:1/db",
            "AUTH_DEV_BYPASS": "true",
            "SERVER_ENVIRONMENT": "production",
        },
    )
    try:
        result = container.wait(timeout=60)
        logs = container.logs().decode(errors="replace")
        assert result["StatusCode"] != 0, logs
        lowered = logs.lower()
        assert "production" in lowered, logs
        assert "bypass" in lowered, logs
    finally:
        container.remove(force=True)


# --- least privilege and labels ------------------------------------------------------------


def test_containers_unprivileged_backend_not_root_everything_labelled(
    shared_stack: Stack,
) -> None:
    engine = docker.from_env(version="auto")
    project = shared_stack.project
    named = [
        c
        for c in engine.containers.list(all=True)
        if c.name == project or c.name.startswith(f"{project}-")
    ]
    assert len(named) == 3, [c.name for c in named]
    for c in named:
        c.reload()
        assert c.labels.get(LABEL_PROJECT) == project, c.name
        host = c.attrs["HostConfig"]
        assert not host.get("Privileged"), c.name
        assert not host.get("CapAdd"), (c.name, host.get("CapAdd"))
    backend = shared_stack.container("backend")
    backend.reload()
    user = backend.attrs["Config"]["User"]
    assert user, "backend runs as the image default (root)"
    assert user.split(":")[0] not in ("root", "0"), user
    top = backend.top(ps_args="-o pid,uid,comm")
    uids = [row[1] for row in top["Processes"] if "ignition" in row[-1]]
    assert uids, top
    assert "0" not in uids, top
    volumes = [v for v in engine.volumes.list() if v.name.startswith(f"{project}_")]
    assert {v.name for v in volumes} == {f"{project}_pgdata", f"{project}_s3data"}
    for v in volumes:
        assert (v.attrs.get("Labels") or {}).get(LABEL_PROJECT) == project, v.name
