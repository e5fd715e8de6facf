"""`devenv up` on the real engine: cold, warm no-op, status shape, loopback, credentials."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from typing import Any

import docker

from devenv.state import cache_dir
from tests.integration.conftest import LABEL_PROJECT, Stack, container_steps


def test_cold_up_then_warm_noop(stack: Stack) -> None:
    status = stack.status()
    assert status["schema_version"] == 1
    assert status["profile"] == "local"
    names = [s["name"] for s in status["services"]]
    assert names == ["postgres", "objectstore", "backend"]
    for svc in status["services"]:
        assert svc["provider"] == "local"
        assert svc["state"] == "running"
        assert svc["healthy"] is True, svc
        assert svc["image"]
        assert svc["url"].startswith(("postgres://", "http://127.0.0.1:"))
    before = {c.labels["io.devenv.service"]: c.id for c in stack.containers()}

    again = stack.cli("up", "--json")
    result = json.loads(again.stdout)
    assert result["noop"] is True, result["plan"]
    assert set(container_steps(result["plan"]).values()) == {"keep"}
    assert {s["kind"] for s in result["plan"]} == {"keep", "wait-ready"}
    after = {c.labels["io.devenv.service"]: c.id for c in stack.containers()}
    assert after == before

    plain = stack.cli("up")
    assert "Nothing to do" in plain.stdout


def test_dry_run_prints_plan_with_causes(stack: Stack) -> None:
    stack.container("objectstore").stop(timeout=5)
    out = stack.cli("up", "--dry-run").stdout
    assert "start" in out
    assert "objectstore" in out
    assert "exited" in out
    assert "keep" in out
    assert "postgres" in out
    assert stack.container("objectstore").status == "exited"


def test_ports_bind_loopback_only(stack: Stack) -> None:
    for c in stack.containers():
        c.reload()
        assert not c.attrs["HostConfig"].get("Privileged")
        if c.attrs["HostConfig"]["NetworkMode"] == "host":
            env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
            assert env["SERVER_HOST"] == "127.0.0.1"
            continue
        bindings = c.attrs["HostConfig"]["PortBindings"]
        assert bindings
        for host_list in bindings.values():
            for b in host_list:
                assert b["HostIp"] == "127.0.0.1", (c.name, bindings)
        for host_list in (c.attrs["NetworkSettings"]["Ports"] or {}).values():
            for b in host_list or []:
                assert b["HostIp"] == "127.0.0.1"


def test_credentials_file_is_private_and_never_printed(stack: Stack) -> None:
    path = stack.root / ".devenv" / stack.project / "state.json"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600
    creds = stack.state()["credentials"]
    assert len(creds["postgres_password"]) >= 16
    text = stack.cli("status").stdout + json.dumps(stack.status())
    for secret in creds.values():
        assert secret not in text
    shown = stack.cli("status", "--show-secrets").stdout
    assert creds["postgres_password"] in shown


def _engine_objects(project: str) -> dict[str, Any]:
    """Every engine object a run could have made or changed: containers (with state), volumes,
    images (tags and ids)."""
    api = docker.from_env(version="auto").api
    flt = {"label": f"{LABEL_PROJECT}={project}"}
    return {
        "containers": sorted((c["Id"], c["State"]) for c in api.containers(all=True, filters=flt)),
        "volumes": sorted(v["Name"] for v in api.volumes(filters=flt).get("Volumes") or []),
        "images": sorted((i["Id"], tuple(i.get("RepoTags") or ())) for i in api.images()),
    }


def _files(stack: Stack) -> dict[str, object]:
    """What a run writes: its state file and lock, and its entries in the machine-wide claims
    (the rest of those files belongs to other projects, which may run meanwhile)."""
    found: dict[str, object] = {}
    for path in (stack.root / ".devenv" / stack.project).glob("*"):
        found[path.name] = path.read_bytes()
    for name in ("port-claims", "image-claims"):
        path = cache_dir() / f"{name}.json"
        claims = json.loads(path.read_text()) if path.exists() else {}
        found[name] = claims.get(stack.project)
    return found


def test_dry_run_touches_no_file_and_no_engine_object(
    make_stack: Callable[..., Stack], stack: Stack
) -> None:
    fresh = make_stack()
    stack.container("objectstore").stop(timeout=5)  # something for the plan to do
    for subject in (fresh, stack):  # a project never started, and a running one
        files, engine = _files(subject), _engine_objects(subject.project)
        out = subject.cli("up", "--dry-run").stdout
        as_json = json.loads(subject.cli("up", "--dry-run", "--json").stdout)
        assert _files(subject) == files
        assert _engine_objects(subject.project) == engine
        assert out.strip()
        assert as_json["noop"] is False
    assert not (fresh.root / ".devenv" / fresh.project).exists()
    kinds = [s["kind"] for s in json.loads(fresh.cli("up", "--dry-run", "--json").stdout)["plan"]]
    for kind in ("save-state", "claim-ports", "create-volume", "create", "start", "wait-ready",
                 "create-bucket", "verify-migrations", "seed-user"):  # fmt: skip
        assert kind in kinds, kind
