"""The shipped contracts against recorded answers of both backends, replayed via MockTransport.

tests/unit/recorded/ holds the answers: the reference backend's, and the real service's as the
backend contract describes it (empty 404 body, {status, tables} database health, no CSRF on
/auth/*, a Host prefix check, providers enabled with empty credentials).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devenv.checks import ids
from devenv.checks.contract import run_contract_checks
from devenv.checks.spec import Contract, load_contract
from devenv.model import CheckResult
from devenv.probes.base import ProbeFailure

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "recorded"
BASE = "http://127.0.0.1:18080"
IGNITION = load_contract(REPO / "contracts" / "ignition.toml")
REFERENCE = load_contract(REPO / "contracts" / "reference.toml")
PREFIX_HOST = (
    "bypass accepted Host localhost.example.com: the bypass checks a prefix, not the host "
    "(expected 401, got 200"
)


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


def reproducible_uuid(check_id: str) -> str:
    """The recordings were made with these ids, so generated payloads match them."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, check_id))


class Replay:
    """Answers each request with the first recorded exchange that matches it.

    An exchange matches on method, path and the request headers it lists (null: absent);
    `once` exchanges answer one request; `bucket` effects keep a fake bucket in step.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.exchanges: list[dict[str, Any]] = data["exchanges"]
        self.echo = bool(data.get("echo_request_id"))
        self.bucket: set[str] = set()
        self.sent: list[tuple[str, str]] = []
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append((request.method, request.url.path))
            for i, exchange in enumerate(self.exchanges):
                if i not in self._used and self._matches(exchange, request):
                    if exchange.get("once"):
                        self._used.add(i)
                    return self._answer(exchange, request)
        raise AssertionError(f"nothing recorded for {request.method} {request.url.path}")

    @staticmethod
    def _matches(exchange: dict[str, Any], request: httpx.Request) -> bool:
        if (exchange["method"], exchange["path"]) != (request.method, request.url.path):
            return False
        wanted: dict[str, str | None] = exchange.get("request", {})
        return all(request.headers.get(name) == value for name, value in wanted.items())

    def _answer(self, exchange: dict[str, Any], request: httpx.Request) -> httpx.Response:
        effect = exchange.get("bucket", {})
        self.bucket |= {effect["add"]} if "add" in effect else set()
        self.bucket -= {effect["remove"]} if "remove" in effect else set()
        headers = dict(exchange.get("headers", {}))
        if self.echo:
            headers["x-request-id"] = request.headers.get("x-request-id") or str(uuid.uuid4())
        if "json" in exchange:
            body = json.dumps(exchange["json"]).encode()
        else:
            body = exchange.get("text", "").encode()
        return httpx.Response(exchange["status"], headers=headers, content=body)


def run(
    contract: Contract,
    replay: Replay | Callable[[httpx.Request], httpx.Response],
    *,
    bypass: bool = True,
    bucket: Callable[[str], bool] | None = None,
    running: dict[str, CheckResult] | None = None,
) -> dict[str, CheckResult]:
    if bucket is None and isinstance(replay, Replay):
        bucket = replay.bucket.__contains__
    results = run_contract_checks(
        contract,
        BASE,
        bypass_expected=bypass,
        object_exists=bucket,
        running=running,
        transport=httpx.MockTransport(replay),
        new_uuid=reproducible_uuid,
    )
    assert [r.id for r in results] == list(ids.CONTRACT_CHECKS)
    return {r.id: r for r in results}


def failed(results: dict[str, CheckResult]) -> dict[str, str]:
    return {cid: r.detail for cid, r in results.items() if r.failed}


def blocking(results: dict[str, CheckResult]) -> list[str]:
    return [cid for cid, r in results.items() if r.blocking]


@pytest.fixture
def reference() -> dict[str, Any]:
    return copy.deepcopy(recorded("reference.json"))


@pytest.fixture
def real() -> dict[str, Any]:
    return copy.deepcopy(recorded("real_service.json"))


def replace_answer(data: dict[str, Any], method: str, path: str, **answer: Any) -> None:
    """Change every recorded answer to method+path (a deliberately broken backend)."""
    hits = [e for e in data["exchanges"] if (e["method"], e["path"]) == (method, path)]
    assert hits, (method, path)
    for exchange in hits:
        if "json" in answer or "text" in answer:
            exchange.pop("json", None)
            exchange.pop("text", None)
        exchange.update({key: value for key, value in answer.items() if value is not None})


# --- both backends, both contracts -----------------------------------------------------------


@pytest.mark.parametrize("contract", [IGNITION, REFERENCE], ids=["ignition", "reference"])
def test_reference_backend_passes_every_check(
    contract: Contract, reference: dict[str, Any]
) -> None:
    replay = Replay(reference)
    results = run(contract, replay)
    assert failed(results) == {}
    assert not any(r.skipped for r in results.values())
    assert replay.bucket == set()  # the blob the check uploaded is gone again
    blob = results[ids.BLOB_ROUNDTRIP].detail
    assert blob.startswith("POST /api/blobs/upload 200 or 201: id present, key present;")
    assert "object gone from the bucket; GET /api/blobs/${id} 404" in blob
    assert results[ids.ROUTE_API_FOREIGN_HOST].detail == (
        "GET /api (Host: example.com) 401; GET /api (Host: localhost.example.com) 401; "
        "GET /api (Host: 127.0.0.1.nip.io) 401"
    )


def test_real_service_passes_its_contract_with_one_advisory_finding(real: dict[str, Any]) -> None:
    results = run(IGNITION, Replay(real))
    assert blocking(results) == []
    assert set(failed(results)) == {ids.ROUTE_API_FOREIGN_HOST}
    host = results[ids.ROUTE_API_FOREIGN_HOST]
    assert host.level == "advisory"
    assert host.detail.startswith(PREFIX_HOST), host.detail
    # what the real service is known to do differently passes: only the promise is checked
    assert results[ids.ROUTE_NOT_FOUND].ok  # an empty 404 body
    assert results[ids.ROUTE_ADMIN_DB_HEALTH].ok  # {status: healthy, tables: [...]}
    assert results[ids.MIDDLEWARE_CSRF_AUTH_SCOPE].ok  # /auth/signout 200 without Origin
    providers = results[ids.ROUTE_AUTH_PROVIDERS]
    assert providers.detail == "GET /auth/providers 200: body is a list"  # nothing about OAuth


def test_real_service_fails_the_reference_contract_on_the_host_check_only(
    real: dict[str, Any],
) -> None:
    results = run(REFERENCE, Replay(real))
    assert blocking(results) == [ids.ROUTE_API_FOREIGN_HOST]
    assert results[ids.ROUTE_API_FOREIGN_HOST].detail.startswith(PREFIX_HOST)


@pytest.mark.parametrize("contract", [IGNITION, REFERENCE], ids=["ignition", "reference"])
def test_real_service_without_the_bypass(contract: Contract) -> None:
    results = run(contract, Replay(recorded("real_service_no_bypass.json")), bypass=False)
    assert failed(results) == {}
    assert results[ids.ROUTE_AUTH_SESSION].detail == "GET /auth/session 200: user is null"
    assert results[ids.ROUTE_API].detail == "GET /api 401"
    blob = results[ids.BLOB_ROUNDTRIP]
    assert blob.skipped
    assert blob.cause is None
    assert blob.detail == "skipped: needs a session, and the dev auth bypass is off"


def test_bypass_expected_but_off_fails_the_session_routes() -> None:
    results = run(IGNITION, Replay(recorded("real_service_no_bypass.json")), bypass=True)
    assert set(failed(results)) == {
        ids.ROUTE_AUTH_SESSION,
        ids.ROUTE_API,
        ids.ROUTE_ADMIN,
        ids.ROUTE_ADMIN_DB_HEALTH,
        ids.BLOB_ROUNDTRIP,
    }
    assert results[ids.ROUTE_API].detail.startswith("expected 200, got 401 {")
    assert results[ids.BLOB_ROUNDTRIP].detail.startswith(
        "step 1 (POST /api/blobs/upload): expected 200 or 201, got"
    )


# --- deliberately broken backends: each breach names expected and got ------------------------


def test_csrf_on_auth_routes_is_advisory_for_the_real_contract_required_for_the_reference(
    reference: dict[str, Any],
) -> None:
    csrf = {"error": "csrf_violation", "message": "POST needs an Origin"}
    replace_answer(reference, "POST", "/auth/signout", status=403, json=csrf)
    lenient = run(IGNITION, Replay(copy.deepcopy(reference)))
    strict = run(REFERENCE, Replay(reference))
    expected = (
        'expected 200, got 403 {"error": "csrf_violation", "message": "POST needs an Origin"}'
    )
    assert failed(lenient) == {ids.MIDDLEWARE_CSRF_AUTH_SCOPE: expected}
    assert blocking(lenient) == []
    assert blocking(strict) == [ids.MIDDLEWARE_CSRF_AUTH_SCOPE]


def test_db_health_accepts_either_documented_field(reference: dict[str, Any]) -> None:
    replace_answer(reference, "GET", "/admin/db/health", json={"database": "healthy"})
    assert run(IGNITION, Replay(reference))[ids.ROUTE_ADMIN_DB_HEALTH].ok


def test_db_health_not_healthy_says_what_was_found(reference: dict[str, Any]) -> None:
    replace_answer(reference, "GET", "/admin/db/health", json={"status": "degraded"})
    detail = run(IGNITION, Replay(reference))[ids.ROUTE_ADMIN_DB_HEALTH].detail
    assert detail == (
        'expected (status = "healthy" or database = "healthy"), '
        'got status = "degraded"; database absent in {"status": "degraded"}'
    )


def test_old_upload_route_fails_the_round_trip_and_uploads_nothing(
    reference: dict[str, Any],
) -> None:
    replace_answer(reference, "POST", "/api/blobs/upload", status=405, text="")
    replay = Replay(reference)
    detail = run(IGNITION, replay)[ids.BLOB_ROUNDTRIP].detail
    assert detail == "step 1 (POST /api/blobs/upload): expected 200 or 201, got 405 empty body"
    assert [p for m, p in replay.sent if m == "DELETE"] == []  # nothing was uploaded


def test_blob_left_in_the_bucket_fails_and_cleanup_still_deletes(
    reference: dict[str, Any],
) -> None:
    for exchange in reference["exchanges"]:
        exchange.pop("bucket", None) if exchange["method"] == "DELETE" else None
    replay = Replay(reference)
    detail = run(IGNITION, replay)[ids.BLOB_ROUNDTRIP].detail
    assert detail.startswith("step 5 (object ${key}): expected object ")
    assert detail.endswith(" gone from the bucket, got present")
    deletes = [p for m, p in replay.sent if m == "DELETE"]
    assert len(deletes) == 2  # the flow's own DELETE, then the cleanup's


@pytest.mark.parametrize(
    ("method", "path", "answer", "check_id", "message"),
    [
        (
            "GET",
            "/",
            {"text": "Hello"},
            ids.ROUTE_ROOT,
            "expected text 'Ignition API', got 200 Hello",
        ),
        (
            "GET",
            "/health",
            {"json": {"status": "healthy"}},
            ids.ROUTE_HEALTH,
            "expected schema_version present, got schema_version absent",
        ),
        (
            "GET",
            "/devenv-probe/no-such-route",
            {"status": 200, "text": "<html>spa</html>"},
            ids.ROUTE_NOT_FOUND,
            "expected 404, got 200 <html>spa</html>",
        ),
        (
            "GET",
            "/auth/providers",
            {"json": {"google": True}},
            ids.ROUTE_AUTH_PROVIDERS,
            'expected body is a list, got body = {"google": true}',
        ),
        (
            "OPTIONS",
            "/api",
            {"headers": {"access-control-allow-origin": "*"}},
            ids.MIDDLEWARE_CORS_DENIED,
            "expected header access-control-allow-origin absent, "
            'got header access-control-allow-origin = "*"',
        ),
        (
            "POST",
            "/api/blobs/upload",
            {"status": 401, "json": {"error": "unauthorized"}},
            ids.MIDDLEWARE_CSRF,
            'expected 403, got 401 {"error": "unauthorized"}',
        ),
    ],
)
def test_each_breach_names_expected_and_got(
    reference: dict[str, Any],
    method: str,
    path: str,
    answer: dict[str, Any],
    check_id: str,
    message: str,
) -> None:
    replace_answer(reference, method, path, **answer)
    result = run(REFERENCE, Replay(reference))[check_id]
    assert result.blocking
    assert result.detail == message
    assert "\n" not in result.detail


def test_request_id_not_echoed(reference: dict[str, Any]) -> None:
    reference["echo_request_id"] = False
    detail = run(REFERENCE, Replay(reference))[ids.MIDDLEWARE_REQUEST_ID].detail
    expected = f"devenv-{reproducible_uuid(ids.MIDDLEWARE_REQUEST_ID)}"
    assert detail == (
        f'step 1 (GET /health): expected header x-request-id = "{expected}", '
        "got no x-request-id header"
    )


# --- no answer, odd answers, root causes ------------------------------------------------------


def test_connection_errors_become_failed_checks() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    results = run(IGNITION, refuse)
    assert all(r.failed for r in results.values())
    assert results[ids.ROUTE_ROOT].detail == (
        "expected an HTTP answer, got ConnectError: connection refused"
    )


def test_object_lookup_errors_fail_the_blob_check_and_clean_up(reference: dict[str, Any]) -> None:
    replay = Replay(reference)

    def broken_lookup(key: str) -> bool:
        raise ProbeFailure(f"no bucket for {key[:8]}")

    blob = run(IGNITION, replay, bucket=broken_lookup)[ids.BLOB_ROUNDTRIP]
    assert blob.failed
    assert "ProbeFailure: no bucket for 00000000" in blob.detail
    assert [m for m, _p in replay.sent].count("DELETE") == 1  # the cleanup


def test_non_json_answer_is_a_mismatch_not_a_crash() -> None:
    def text_only(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy</html>")

    health = run(IGNITION, text_only)[ids.ROUTE_HEALTH]
    assert health.detail == 'expected status = "healthy", got 200 non-JSON body'


def test_a_dead_backend_skips_every_route_check_with_one_cause() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request may be sent: {request.url}")

    dead = CheckResult(
        ids.BACKEND_RUNNING,
        "Backend running",
        ok=False,
        detail="backend exited with code 101: panicked at axum-0.8.1/src/routing/path_router.rs:"
        "139:17: Path segments must not start with `:`",
    )
    results = run(IGNITION, unreachable, running={"backend": dead})
    assert {r.cause for r in results.values()} == {ids.BACKEND_RUNNING}
    assert all(r.skipped and r.ok for r in results.values())
    assert results[ids.ROUTE_ROOT].detail == f"skipped: {dead.detail}"
    # levels survive the skip: the advisory check stays advisory
    assert results[ids.ROUTE_API_FOREIGN_HOST].level == "advisory"


def test_a_dead_object_store_skips_only_the_blob_check(reference: dict[str, Any]) -> None:
    down = CheckResult(ids.OBJECTSTORE_RUNNING, "Object store running", False, "gone")
    results = run(IGNITION, Replay(reference), running={"objectstore": down})
    assert [cid for cid, r in results.items() if r.skipped] == [ids.BLOB_ROUNDTRIP]
    assert results[ids.BLOB_ROUNDTRIP].cause == ids.OBJECTSTORE_RUNNING
    assert failed(results) == {}
