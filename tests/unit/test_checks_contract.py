"""Route-contract checks against an in-process fake backend served through httpx.MockTransport."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from devenv.checks import contract, ids
from devenv.model import CheckResult

BASE = "http://127.0.0.1:18080"
ALLOWED_ORIGINS = {"http://localhost:3000", "http://localhost:3001"}


@dataclass
class FakeBackend:
    """Answers like the contract says; flags switch individual behaviours off."""

    bypass: bool = True
    root_text: str = "Ignition API"
    echo_request_id: bool = True
    csrf: bool = True
    cors_wildcard: bool = False
    bypass_ignores_host: bool = False
    keep_blob_after_delete: bool = False
    blobs: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    bucket: set[str] = field(default_factory=set)

    def authed(self, request: httpx.Request) -> bool:
        host = request.headers["host"].split(":")[0]
        return self.bypass and (self.bypass_ignores_host or host in {"127.0.0.1", "localhost"})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self.route(request)
        rid = request.headers.get("x-request-id") if self.echo_request_id else None
        response.headers["x-request-id"] = rid or str(uuid.uuid4())
        return response

    def route(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911, PLR0912
        path, method = request.url.path, request.method
        if method == "OPTIONS":
            origin = request.headers.get("origin", "")
            headers = {}
            if origin in ALLOWED_ORIGINS or self.cors_wildcard:
                headers["access-control-allow-origin"] = "*" if self.cors_wildcard else origin
            return httpx.Response(200, headers=headers)
        unsafe = method not in {"GET", "HEAD"}
        if unsafe and self.csrf and request.headers.get("origin") not in ALLOWED_ORIGINS:
            return error(403, "csrf_violation")
        authed = self.authed(request)
        if path == "/":
            return httpx.Response(200, text=self.root_text)
        if path == "/health":
            body = {"status": "healthy", "version": "0.1.0", "schema_version": "0001"}
            return httpx.Response(200, json=body)
        if path == "/version":
            return httpx.Response(200, json={"api": "0.1.0", "schema": "0001"})
        if path == "/auth/providers":
            return httpx.Response(200, json=[{"id": "google", "name": "Google", "enabled": False}])
        if path == "/auth/signout":
            return httpx.Response(200, json={"ok": True})
        if path == "/auth/session":
            user = {"id": contract.DEV_USER_ID, "role": "admin"} if authed else None
            return httpx.Response(200, json={"user": user})
        if not authed and (path.startswith("/api") or path.startswith("/admin")):
            return error(401, "unauthorized")
        if path == "/api":
            return httpx.Response(200, json={"version": "0.1.0", "modules": ["blobs"]})
        if path == "/admin":
            return httpx.Response(200, json={"modules": [], "role_required": "admin"})
        if path == "/admin/db/health":
            return httpx.Response(200, json={"database": "healthy"})
        if path == "/api/blobs" and method == "POST":
            return self.upload(request)
        if path.startswith("/api/blobs/"):
            blob_id = path.rsplit("/", 1)[1]
            if blob_id not in self.blobs:
                return error(404, "not_found")
            key, data = self.blobs[blob_id]
            if method == "DELETE":
                if not self.keep_blob_after_delete:
                    self.bucket.discard(key)
                del self.blobs[blob_id]
                return httpx.Response(204)
            return httpx.Response(200, content=data)
        return error(404, "not_found")

    def upload(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        # the multipart payload sits between the part headers and the closing boundary
        data = body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
        blob_id = str(uuid.uuid4())
        key = f"{contract.DEV_USER_ID}/other/{blob_id}.txt"
        self.blobs[blob_id] = (key, data)
        self.bucket.add(key)
        return httpx.Response(201, json={"id": blob_id, "key": key})


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "message": code})


def run(
    backend: FakeBackend, *, bypass: bool = True, with_bucket: bool = True
) -> dict[str, CheckResult]:
    results = contract.run_contract_checks(
        BASE,
        bypass_expected=bypass,
        object_exists=backend.bucket.__contains__ if with_bucket else None,
        transport=httpx.MockTransport(backend),
    )
    assert [r.id for r in results] == list(ids.CONTRACT_CHECKS)
    return {r.id: r for r in results}


def failed(results: dict[str, CheckResult]) -> dict[str, str]:
    return {cid: r.detail for cid, r in results.items() if not r.ok}


def test_healthy_backend_with_bypass_passes_every_check() -> None:
    backend = FakeBackend()
    results = run(backend)
    assert failed(results) == {}
    assert not any(r.skipped for r in results.values())
    assert results[ids.ROUTE_AUTH_SESSION].detail.startswith("dev user")
    assert "deleted" in results[ids.BLOB_ROUNDTRIP].detail
    assert backend.bucket == set()


def test_without_bypass_protected_routes_must_refuse_and_blob_is_skipped() -> None:
    results = run(FakeBackend(bypass=False), bypass=False)
    assert failed(results) == {}
    assert results[ids.BLOB_ROUNDTRIP].skipped
    assert "not verified" in results[ids.ROUTE_ADMIN_DB_HEALTH].detail
    assert results[ids.ROUTE_API].detail == "401 unauthorized without a session"


def test_bypass_expected_but_backend_has_it_off_fails_the_protected_routes() -> None:
    results = run(FakeBackend(bypass=False), bypass=True)
    assert set(failed(results)) == {
        ids.ROUTE_AUTH_SESSION,
        ids.ROUTE_API,
        ids.ROUTE_ADMIN,
        ids.ROUTE_ADMIN_DB_HEALTH,
        ids.BLOB_ROUNDTRIP,
    }
    assert failed(results)[ids.ROUTE_API].startswith("expected 200 JSON with modules")


def test_bypass_that_ignores_the_host_fails_the_foreign_host_check() -> None:
    results = run(FakeBackend(bypass_ignores_host=True))
    assert failed(results) == {
        ids.ROUTE_API_FOREIGN_HOST: "expected 401 for Host example.com (bypass is loopback only), "
        'got 200 {"version":"0.1.0","modules":["blobs"]}'
    }


@pytest.mark.parametrize(
    ("flaw", "check_id", "message"),
    [
        ({"root_text": "Hello"}, ids.ROUTE_ROOT, "expected 200 text 'Ignition API', got 200 Hello"),
        ({"echo_request_id": False}, ids.MIDDLEWARE_REQUEST_ID, "expected x-request-id devenv-"),
        ({"csrf": False}, ids.MIDDLEWARE_CSRF, "expected 403 error 'csrf_violation', got 200"),
        ({"cors_wildcard": True}, ids.MIDDLEWARE_CORS_ALLOWED, "got '*'"),
        ({"cors_wildcard": True}, ids.MIDDLEWARE_CORS_DENIED, "got '*'"),
        ({"keep_blob_after_delete": True}, ids.BLOB_ROUNDTRIP, "gone from the bucket, got present"),
    ],
)
def test_each_contract_breach_names_expected_and_got(
    flaw: dict[str, object], check_id: str, message: str
) -> None:
    results = run(FakeBackend(**flaw))  # type: ignore[arg-type]
    assert not results[check_id].ok
    assert message in results[check_id].detail
    assert "\n" not in results[check_id].detail


def test_connection_errors_become_failed_checks() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    results = contract.run_contract_checks(
        BASE, bypass_expected=True, object_exists=None, transport=httpx.MockTransport(refuse)
    )
    assert all(not r.ok for r in results)
    assert results[0].detail == "expected an HTTP answer, got ConnectError: connection refused"


def test_object_lookup_errors_fail_the_blob_check_and_clean_up() -> None:
    backend = FakeBackend()

    def broken_lookup(key: str) -> bool:
        raise RuntimeError(f"no bucket for {key[:8]}")

    results = contract.run_contract_checks(
        BASE,
        bypass_expected=True,
        object_exists=broken_lookup,
        transport=httpx.MockTransport(backend),
    )
    blob = {r.id: r for r in results}[ids.BLOB_ROUNDTRIP]
    assert not blob.ok
    assert "RuntimeError: no bucket for 00000000" in blob.detail
    assert backend.blobs == {}


def test_non_json_answer_is_a_mismatch_not_a_crash() -> None:
    def text_only(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy</html>")

    results = contract.run_contract_checks(
        BASE, bypass_expected=True, object_exists=None, transport=httpx.MockTransport(text_only)
    )
    health = {r.id: r for r in results}[ids.ROUTE_HEALTH]
    assert health.detail == (
        "expected 200 JSON status 'healthy' with schema_version, got 200 non-JSON body"
    )
