"""Route-contract checks: ask a running backend what the Ignition contract says it must answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devenv.checks import ids
from devenv.model import CheckResult

if TYPE_CHECKING:
    import httpx

DEV_USER_ID = "00000000-0000-0000-0000-000000000001"
FRONTEND_ORIGIN = "http://localhost:3000"
FOREIGN_ORIGIN = "http://evil.example"
FOREIGN_HOST = "example.com"
MISSING_PATH = "/devenv-probe/no-such-route"


class _Mismatch(Exception):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")


@dataclass(frozen=True)
class _Ctx:
    client: httpx.Client
    bypass: bool
    object_exists: Callable[[str], bool] | None


def run_contract_checks(
    base_url: str,
    *,
    bypass_expected: bool,
    object_exists: Callable[[str], bool] | None,
    timeout: float = 5.0,
    transport: httpx.BaseTransport | None = None,
) -> list[CheckResult]:
    """Run every route and middleware check concurrently; results come back in id order.

    Connection errors and unexpected answers become failed checks, never exceptions.
    """
    import httpx  # imported here to keep `devenv --help` fast

    # One pooled transport, created once (it holds the TLS context, which is slow to build);
    # trust_env off: a proxy from the environment must not intercept loopback requests.
    shared = transport or httpx.HTTPTransport(trust_env=False)

    def run_one(check_id: str, fn: Callable[[_Ctx], str]) -> CheckResult:
        # A client per check, so the signout probe's Set-Cookie cannot leak into the others.
        # Not closed here: closing a client closes the shared transport.
        client = httpx.Client(base_url=base_url, timeout=timeout, transport=shared, trust_env=False)
        return _run_one(check_id, fn, _Ctx(client, bypass_expected, object_exists))

    try:
        with ThreadPoolExecutor(max_workers=len(_CHECKS)) as pool:
            futures = [pool.submit(run_one, check_id, fn) for check_id, fn in _CHECKS.items()]
            return [f.result() for f in futures]
    finally:
        if transport is None:
            shared.close()


def _run_one(check_id: str, fn: Callable[[_Ctx], str], ctx: _Ctx) -> CheckResult:
    import httpx

    name = ids.check_name(check_id)
    try:
        return CheckResult(check_id, name, ok=True, detail=fn(ctx))
    except _Skip as skip:
        return CheckResult(check_id, name, ok=True, detail=str(skip), skipped=True)
    except _Mismatch as exc:
        return CheckResult(check_id, name, ok=False, detail=_one_line(str(exc)))
    except httpx.HTTPError as exc:
        got = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return CheckResult(
            check_id, name, ok=False, detail=_one_line(f"expected an HTTP answer, got {got}")
        )


class _Skip(Exception):
    pass


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _describe(response: httpx.Response) -> str:
    body = _one_line(response.text, 80) if response.content else "empty body"
    return f"{response.status_code} {body}"


def _json(response: httpx.Response, expected: str) -> object:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Mismatch(expected, f"{response.status_code} non-JSON body") from exc


def _expect_status(response: httpx.Response, status: int, expected: str) -> None:
    if response.status_code != status:
        raise _Mismatch(expected, _describe(response))


def _expect_error(response: httpx.Response, status: int, error: str) -> None:
    expected = f"{status} error {error!r}"
    _expect_status(response, status, expected)
    body = _json(response, expected)
    if not isinstance(body, dict) or body.get("error") != error:
        raise _Mismatch(expected, _describe(response))


def _object(response: httpx.Response, expected: str) -> dict[str, object]:
    _expect_status(response, 200, expected)
    body = _json(response, expected)
    if not isinstance(body, dict):
        raise _Mismatch(expected, _describe(response))
    return body


# --- routes --------------------------------------------------------------------------------


def _root(ctx: _Ctx) -> str:
    response = ctx.client.get("/")
    expected = "200 text 'Ignition API'"
    _expect_status(response, 200, expected)
    if response.text.strip() != "Ignition API":
        raise _Mismatch(expected, _describe(response))
    return "200 'Ignition API'"


def _health(ctx: _Ctx) -> str:
    expected = "200 JSON status 'healthy' with schema_version"
    body = _object(ctx.client.get("/health"), expected)
    if body.get("status") != "healthy" or "schema_version" not in body:
        raise _Mismatch(expected, _one_line(json.dumps(body), 80))
    return f"healthy, schema_version {body['schema_version']}"


def _version(ctx: _Ctx) -> str:
    body = _object(ctx.client.get("/version"), "200 JSON object")
    return f"200 JSON with {', '.join(sorted(body)) or 'no fields'}"


def _providers(ctx: _Ctx) -> str:
    response = ctx.client.get("/auth/providers")
    expected = "200 JSON list"
    _expect_status(response, 200, expected)
    body = _json(response, expected)
    if not isinstance(body, list):
        raise _Mismatch(expected, _describe(response))
    enabled = sum(1 for p in body if isinstance(p, dict) and p.get("enabled") is True)
    return f"{len(body)} providers, {enabled} enabled"


def _session(ctx: _Ctx) -> str:
    response = ctx.client.get("/auth/session")
    if not ctx.bypass:
        expected = "200 {user: null} without a session"
        body = _object(response, expected)
        if body.get("user", "absent") is not None:
            raise _Mismatch(expected, _describe(response))
        return "no session: user null"
    expected = f"200 dev user {DEV_USER_ID} with role admin"
    user = _object(response, expected).get("user")
    if not isinstance(user, dict) or user.get("id") != DEV_USER_ID or not _is_admin(user):
        raise _Mismatch(expected, _describe(response))
    return f"dev user {DEV_USER_ID}, role admin"


def _is_admin(user: dict[str, object]) -> bool:
    roles = user.get("roles")
    return user.get("role") == "admin" or (isinstance(roles, list) and "admin" in roles)


def _api(ctx: _Ctx) -> str:
    response = ctx.client.get("/api")
    if not ctx.bypass:
        _expect_error(response, 401, "unauthorized")
        return "401 unauthorized without a session"
    expected = "200 JSON with modules (dev bypass)"
    body = _object(response, expected)
    modules = body.get("modules")
    if not isinstance(modules, list):
        raise _Mismatch(expected, _describe(response))
    return f"200 with {len(modules)} modules"


def _api_foreign_host(ctx: _Ctx) -> str:
    response = ctx.client.get("/api", headers={"Host": FOREIGN_HOST})
    _expect_status(response, 401, f"401 for Host {FOREIGN_HOST} (bypass is loopback only)")
    return f"401 for Host {FOREIGN_HOST}"


def _admin(ctx: _Ctx) -> str:
    response = ctx.client.get("/admin")
    if not ctx.bypass:
        _expect_status(response, 401, "401 without a session")
        return "401 without a session"
    expected = "200 with role_required 'admin' (dev bypass)"
    if _object(response, expected).get("role_required") != "admin":
        raise _Mismatch(expected, _describe(response))
    return "200, role_required admin"


def _admin_db_health(ctx: _Ctx) -> str:
    response = ctx.client.get("/admin/db/health")
    if not ctx.bypass:
        _expect_status(response, 401, "401 without a session")
        return "401 without a session (bypass off: database health not verified)"
    expected = "200 {database: 'healthy'}"
    if _object(response, expected).get("database") != "healthy":
        raise _Mismatch(expected, _describe(response))
    return "database healthy"


def _not_found(ctx: _Ctx) -> str:
    _expect_error(ctx.client.get(MISSING_PATH), 404, "not_found")
    return "404 not_found"


def _request_id(ctx: _Ctx) -> str:
    sent = f"devenv-{uuid.uuid4()}"
    echoed = ctx.client.get("/health", headers={"x-request-id": sent}).headers.get("x-request-id")
    if echoed != sent:
        raise _Mismatch(f"x-request-id {sent} echoed", repr(echoed))
    generated = ctx.client.get("/health").headers.get("x-request-id")
    if not generated:
        raise _Mismatch("a generated x-request-id", "no header")
    return f"echoed, generated {generated}"


def _csrf(ctx: _Ctx) -> str:
    _expect_error(ctx.client.post("/auth/signout"), 403, "csrf_violation")
    return "POST without Origin: 403 csrf_violation"


def _preflight(ctx: _Ctx, origin: str) -> str | None:
    response = ctx.client.options(
        "/api", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    value: str | None = response.headers.get("access-control-allow-origin")
    return value


def _cors_allowed(ctx: _Ctx) -> str:
    allowed = _preflight(ctx, FRONTEND_ORIGIN)
    if allowed != FRONTEND_ORIGIN:
        raise _Mismatch(f"access-control-allow-origin {FRONTEND_ORIGIN}", repr(allowed))
    return f"preflight allows {FRONTEND_ORIGIN}"


def _cors_denied(ctx: _Ctx) -> str:
    allowed = _preflight(ctx, FOREIGN_ORIGIN)
    if allowed is not None:
        raise _Mismatch(f"no access-control-allow-origin for {FOREIGN_ORIGIN}", repr(allowed))
    return f"preflight from {FOREIGN_ORIGIN} gets no allow-origin"


def _blob_roundtrip(ctx: _Ctx) -> str:
    if not ctx.bypass:
        raise _Skip("skipped: needs the dev auth bypass for a session")
    payload = f"devenv blob probe {uuid.uuid4()}\n".encode()
    origin = {"Origin": FRONTEND_ORIGIN}
    upload = ctx.client.post(
        "/api/blobs",
        headers=origin,
        files={"file": ("devenv-probe.txt", payload, "text/plain")},
    )
    expected = "upload answers 200/201 JSON with id and key"
    if upload.status_code not in (200, 201):
        raise _Mismatch(expected, _describe(upload))
    body = _json(upload, expected)
    if not isinstance(body, dict) or "id" not in body or "key" not in body:
        raise _Mismatch(expected, _describe(upload))
    blob_id, key = str(body["id"]), str(body["key"])
    deleted = False
    try:
        read = ctx.client.get(f"/api/blobs/{blob_id}")
        if read.status_code != 200 or read.content != payload:
            raise _Mismatch(
                f"GET /api/blobs/{blob_id} returns the {len(payload)} bytes", _describe(read)
            )
        _expect_object(ctx, key, present=True)
        gone = ctx.client.delete(f"/api/blobs/{blob_id}", headers=origin)
        if gone.status_code not in (200, 204):
            raise _Mismatch(f"DELETE /api/blobs/{blob_id} answers 200/204", _describe(gone))
        deleted = True
        _expect_object(ctx, key, present=False)
    finally:
        if not deleted:
            _best_effort_delete(ctx, blob_id)
    verified = " and in the bucket" if ctx.object_exists else ""
    return f"{len(payload)} bytes uploaded, read back{verified}, deleted (key {key})"


def _expect_object(ctx: _Ctx, key: str, *, present: bool) -> None:
    if ctx.object_exists is None:
        return
    try:
        exists = ctx.object_exists(key)
    except Exception as exc:  # any failure of the caller's lookup is a failed check, not a crash
        raise _Mismatch(f"object {key} lookup", f"{type(exc).__name__}: {exc}") from exc
    if exists != present:
        state = "in the bucket" if present else "gone from the bucket"
        raise _Mismatch(f"object {key} {state}", "present" if exists else "absent")


def _best_effort_delete(ctx: _Ctx, blob_id: str) -> None:
    import httpx

    try:
        ctx.client.delete(f"/api/blobs/{blob_id}", headers={"Origin": FRONTEND_ORIGIN})
    except httpx.HTTPError:
        return


_CHECKS: dict[str, Callable[[_Ctx], str]] = {
    ids.ROUTE_ROOT: _root,
    ids.ROUTE_HEALTH: _health,
    ids.ROUTE_VERSION: _version,
    ids.ROUTE_AUTH_PROVIDERS: _providers,
    ids.ROUTE_AUTH_SESSION: _session,
    ids.ROUTE_API: _api,
    ids.ROUTE_API_FOREIGN_HOST: _api_foreign_host,
    ids.ROUTE_ADMIN: _admin,
    ids.ROUTE_ADMIN_DB_HEALTH: _admin_db_health,
    ids.ROUTE_NOT_FOUND: _not_found,
    ids.MIDDLEWARE_REQUEST_ID: _request_id,
    ids.MIDDLEWARE_CSRF: _csrf,
    ids.MIDDLEWARE_CORS_ALLOWED: _cors_allowed,
    ids.MIDDLEWARE_CORS_DENIED: _cors_denied,
    ids.BLOB_ROUNDTRIP: _blob_roundtrip,
}
