"""The built backend image against the route contract, checked with httpx directly.

An oracle independent of devenv's own checker: every row of the contract's route table, the
middleware (request id, CORS, CSRF), the session and RBAC rules and the blob routes, on the
devenv-built image running on real Postgres and a real S3 server.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from devenv.probes.base import S3Client
from tests.integration.conftest import Stack

DEV_USER_ID = "00000000-0000-0000-0000-000000000001"
FRONTEND = "http://localhost:3000"
ORIGIN = {"Origin": FRONTEND}
FOREIGN_HOST = {"Host": "example.com"}


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30.0, trust_env=False)


def _json(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return response.json()


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = _json(response)
    assert body["error"] == error, body
    assert isinstance(body["message"], str), body
    assert body["message"], body


@pytest.fixture
def api(shared_stack: Stack) -> Iterator[httpx.Client]:
    with _client(shared_stack.backend_url()) as client:
        yield client


# --- public routes -------------------------------------------------------------------------


def test_root_health_and_version(shared_stack: Stack, api: httpx.Client) -> None:
    root = api.get("/")
    assert root.status_code == 200
    assert root.text.strip() == "Ignition API"

    with psycopg.connect(shared_stack.database_url(), connect_timeout=10) as conn:
        row = conn.execute("SELECT max(version) FROM _sqlx_migrations WHERE success").fetchone()
    assert row is not None
    assert row[0] is not None
    latest = int(row[0])

    health = api.get("/health")
    assert health.status_code == 200
    body = _json(health)
    assert body["status"] == "healthy"
    assert isinstance(body["version"], str)
    assert body["version"]
    assert isinstance(body["timestamp"], str)
    assert body["timestamp"]
    assert body["schema_version"] == latest

    version = api.get("/version")
    assert version.status_code == 200
    info = _json(version)
    assert isinstance(info, dict)
    assert info["schema_version"] == latest
    assert info.get("api_version") or info.get("version")


def test_auth_providers_session_and_signout(api: httpx.Client) -> None:
    providers = api.get("/auth/providers")
    assert providers.status_code == 200
    assert _json(providers) == []

    session = api.get("/auth/session")
    assert session.status_code == 200
    user = _json(session)["user"]
    assert user["id"] == DEV_USER_ID
    assert user["email"] == "dev@localhost"
    assert user["role"] == "admin"

    signout = api.post("/auth/signout", headers=ORIGIN)
    assert signout.status_code == 200, signout.text
    cookie = signout.headers.get("set-cookie", "")
    assert cookie.startswith("session=;"), cookie
    assert "Max-Age=0" in cookie


def test_api_and_admin_with_the_bypass(shared_stack: Stack, api: httpx.Client) -> None:
    index = api.get("/api")
    assert index.status_code == 200
    body = _json(index)
    assert isinstance(body["version"], str)
    assert isinstance(body["modules"], list)

    admin = api.get("/admin")
    assert admin.status_code == 200
    admin_body = _json(admin)
    assert admin_body["role_required"] == "admin"
    assert isinstance(admin_body["modules"], list)
    assert "version" in admin_body

    db_health = api.get("/admin/db/health")
    assert db_health.status_code == 200
    health = _json(db_health)
    assert health["status"] == "healthy", health
    assert isinstance(health["total_size_estimate"], str), health
    assert health["total_size_estimate"], health
    counts = {t["name"]: t["row_count"] for t in health["tables"]}
    assert {"_sqlx_migrations", "users", "sessions", "user_roles", "blobs"} <= set(counts)
    assert all(isinstance(n, int) and n >= 0 for n in counts.values()), counts
    with psycopg.connect(shared_stack.database_url(), connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM _sqlx_migrations").fetchone()
    assert row is not None
    assert counts["_sqlx_migrations"] == row[0]
    assert counts["users"] >= 1  # the seeded dev user

    users = api.get("/admin/users")
    assert users.status_code == 200
    listed = _json(users)["users"]
    dev = [u for u in listed if u["id"] == DEV_USER_ID]
    assert dev, listed
    assert dev[0]["email"] == "dev@localhost"
    assert dev[0]["role"] == "admin"


def test_unknown_route_is_json_404(api: httpx.Client) -> None:
    _error(api.get(f"/no-such-route-{uuid.uuid4().hex}"), 404, "not_found")


def test_request_id_generated_and_echoed(api: httpx.Client) -> None:
    generated = api.get("/health").headers.get("x-request-id")
    assert generated is not None
    assert uuid.UUID(generated).version == 4
    # generated per request, not a constant
    assert api.get("/health").headers["x-request-id"] != generated

    sent = f"t-{uuid.uuid4()}"
    assert api.get("/health", headers={"x-request-id": sent}).headers["x-request-id"] == sent
    # echoed on error answers too
    missing = api.get("/nope", headers={"x-request-id": sent})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == sent


def test_csrf_origin_and_referer_rules(api: httpx.Client) -> None:
    # CSRF guards /api/*, /blobs/* and /admin/*: an unsafe method needs an allowed Origin,
    # or, without one, a Referer under an allowed origin.
    upload = {"file": ("c.txt", b"csrf", "text/plain")}
    _error(api.post("/api/blobs/upload", files=upload), 403, "csrf_violation")
    _error(api.post("/blobs/upload", files=upload), 403, "csrf_violation")
    _error(
        api.post("/api/blobs/upload", headers={"Origin": "http://evil.example"}, files=upload),
        403,
        "csrf_violation",
    )
    # a Referer that merely starts with the origin's text but names another host
    _error(
        api.post(
            "/api/blobs/upload",
            headers={"Referer": "http://localhost:3000.evil.example/"},
            files=upload,
        ),
        403,
        "csrf_violation",
    )
    _error(api.delete(f"/api/blobs/{uuid.uuid4()}"), 403, "csrf_violation")
    _error(api.post("/api/blobs/upload-url", json={}), 403, "csrf_violation")
    # past CSRF the route itself answers (here: 422 for a body that is not an upload)
    via_referer = api.post(
        "/api/blobs/upload-url", headers={"Referer": f"{FRONTEND}/settings?tab=1"}, json={}
    )
    _error(via_referer, 422, "validation_error")
    via_origin = api.post("/api/blobs/upload-url", headers={"Origin": "http://127.0.0.1:3001"})
    _error(via_origin, 422, "validation_error")


def test_csrf_rejects_an_upload_before_reading_its_body(shared_stack: Stack) -> None:
    """The 403 comes while the announced body is still unsent: nothing waited for it."""
    port = int(shared_stack.state()["ports"]["backend"])
    head = (
        "POST /api/blobs/upload HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        "Content-Length: 10000000\r\n"
        "\r\n"
        "--x\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)  # a timeout here fails the test: the server waited
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith("HTTP/1.1 403"), answer[:300]


def test_auth_routes_are_outside_the_csrf_scope(api: httpx.Client) -> None:
    for headers in ({}, {"Origin": "http://evil.example"}, {"Referer": "http://evil.example/"}):
        out = api.post("/auth/signout", headers=headers)
        assert out.status_code == 200, (headers, out.text)
        assert _json(out) == {"success": True}
        assert out.headers["set-cookie"].startswith("session=;")


def test_cors_preflight_allowed_and_denied(api: httpx.Client) -> None:
    def preflight(origin: str) -> httpx.Response:
        return api.options(
            "/api/blobs/upload",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )

    allowed = preflight(FRONTEND)
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == FRONTEND
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]

    second = preflight("http://localhost:3001")
    assert second.headers["access-control-allow-origin"] == "http://localhost:3001"

    denied = preflight("http://evil.example")
    assert "access-control-allow-origin" not in denied.headers
    assert "access-control-allow-credentials" not in denied.headers

    simple = api.get("/health", headers=ORIGIN)
    assert simple.headers["access-control-allow-origin"] == FRONTEND
    assert "x-request-id" in simple.headers.get("access-control-expose-headers", "")


# --- blobs ---------------------------------------------------------------------------------


BLOB_SHAPE = {"id", "key", "category", "filename", "mime_type", "size_bytes", "created_at"}


@pytest.mark.parametrize(("mount", "other"), [("/api/blobs", "/blobs"), ("/blobs", "/api/blobs")])
def test_blob_routes_round_trip(
    shared_stack: Stack, api: httpx.Client, mount: str, other: str
) -> None:
    """Upload on one mount, read through both: the `/blobs` mount is the same service."""
    payload = f"contract blob {uuid.uuid4()}\n".encode()
    before = _json(api.get(f"{mount}/usage"))
    upload = api.post(
        f"{mount}/upload",
        headers=ORIGIN,
        files={
            "file": ("note.txt", payload, "text/plain"),
            "metadata": (None, json.dumps({"category": "t-contract"})),
        },
    )
    assert upload.status_code == 200, upload.text
    blob = _json(upload)
    blob_id, key = blob["id"], blob["key"]
    s3 = S3Client(shared_stack.storage(), timeout=30.0)
    deleted = False
    try:
        assert set(blob) >= BLOB_SHAPE, blob
        assert key == f"{DEV_USER_ID}/t-contract/{blob_id}.txt"
        assert blob["size_bytes"] == len(payload)
        assert blob["mime_type"] == "text/plain"
        assert blob["category"] == "t-contract"
        assert s3.get(key) == payload

        for listing in (f"{mount}/", mount, f"{other}/"):
            listed = _json(api.get(listing, params={"category": "t-contract"}))
            mine = [b for b in listed["blobs"] if b["id"] == blob_id]
            assert mine == [blob], (listing, listed)

        usage = _json(api.get(f"{other}/usage"))
        assert usage["count"] == before["count"] + 1
        assert usage["total_bytes"] == before["total_bytes"] + len(payload)

        for base in (mount, other):
            read = api.get(f"{base}/{blob_id}")
            assert read.status_code == 200
            assert read.content == payload
            assert read.headers["content-type"].startswith("text/plain")
            assert _json(api.get(f"{base}/{blob_id}/info")) == blob

        grant = _json(api.get(f"{other}/{blob_id}/download-url"))
        assert grant["method"] == "GET"
        _assert_five_minutes(grant["expires_at"])
        with httpx.Client(timeout=30.0, trust_env=False) as plain:
            fetched = plain.get(grant["url"])
            assert fetched.status_code == 200, fetched.text
            assert fetched.content == payload
            # the signature covers the key: another key with the same query is refused
            forged = plain.get(grant["url"].replace(blob_id, str(uuid.uuid4())))
            assert forged.status_code in (403, 404)

        gone = api.delete(f"{mount}/{blob_id}", headers=ORIGIN)
        assert gone.status_code == 200, gone.text
        deleted = True
        assert s3.get(key) is None
        for base in (mount, other):
            for suffix in ("", "/info", "/download-url"):
                _error(api.get(f"{base}/{blob_id}{suffix}"), 404, "not_found")
        _error(api.delete(f"{other}/{blob_id}", headers=ORIGIN), 404, "not_found")
    finally:
        if not deleted:
            api.delete(f"{mount}/{blob_id}", headers=ORIGIN)
        s3.close()


def _assert_five_minutes(expires_at: str) -> None:
    left = datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - datetime.now(UTC)
    assert 240 <= left.total_seconds() <= 301, expires_at


def test_upload_url_grants_a_presigned_put(shared_stack: Stack, api: httpx.Client) -> None:
    payload = f"presigned upload {uuid.uuid4()}".encode()
    answer = api.post(
        "/api/blobs/upload-url",
        headers=ORIGIN,
        json={"filename": "direct.bin", "mime_type": "application/octet-stream"},
    )
    assert answer.status_code == 200, answer.text
    grant = _json(answer)
    assert grant["method"] == "PUT"
    _assert_five_minutes(grant["expires_at"])
    key = grant["key"]
    assert key.startswith(f"{DEV_USER_ID}/files/"), key
    assert key.endswith(".bin"), key
    s3 = S3Client(shared_stack.storage(), timeout=30.0)
    try:
        with httpx.Client(timeout=30.0, trust_env=False) as plain:
            put = plain.put(grant["url"], content=payload, headers=grant.get("headers") or {})
            assert put.status_code == 200, put.text
            # the grant is for a PUT of that key only: reading through it is refused
            assert plain.get(grant["url"]).status_code == 403
        assert s3.get(key) == payload
    finally:
        s3.delete(key)
        s3.close()
    # both fields are required
    for body in ({}, {"filename": "a.txt"}, {"mime_type": "text/plain"}):
        _error(api.post("/blobs/upload-url", headers=ORIGIN, json=body), 422, "validation_error")


def test_old_blob_routes_are_gone(api: httpx.Client) -> None:
    collection = api.post(
        "/api/blobs", headers=ORIGIN, files={"file": ("a.txt", b"x", "text/plain")}
    )
    assert collection.status_code == 405, collection.text
    assert api.post("/api/blobs/presign/upload", headers=ORIGIN, json={}).status_code == 404
    assert api.get(f"/api/blobs/{uuid.uuid4()}/presign").status_code == 404


def test_unknown_blob_ids_are_404(api: httpx.Client) -> None:
    for blob_id in (str(uuid.uuid4()), "not-a-blob"):
        for mount in ("/api/blobs", "/blobs"):
            for suffix in ("", "/info", "/download-url"):
                _error(api.get(f"{mount}/{blob_id}{suffix}"), 404, "not_found")
            _error(api.delete(f"{mount}/{blob_id}", headers=ORIGIN), 404, "not_found")


def test_blob_routes_answer_503_without__STACK_STORAGE__(shared_stack: Stack) -> None:
    import docker

    engine = docker.from_env(version="auto")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the image the shared stack runs (a tag like `:dev` may be another checkout's build)
    image = shared_stack.container("backend").attrs["Image"]
    container = engine.containers.run(
        image,
        name=f"t-nostorage-{uuid.uuid4().hex[:8]}",
        detach=True,
        network_mode="host",
        environment={
            "SERVER_HOST": "127.0.0.1",
            "SERVER_PORT": str(port),
            "SERVER_ENVIRONMENT": "development",
            "DATABASE_URL": shared_stack.database_url(),
            "AUTH_DEV_BYPASS": "true",
            "RUST_LOG": "info",
        },
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with _client(base) as client:
            _wait_healthy(client, container)
            assert client.get("/").text.strip() == "Ignition API"
            for mount in ("/api/blobs", "/blobs"):
                _error(
                    client.post(
                        f"{mount}/upload",
                        headers=ORIGIN,
                        files={"file": ("a.txt", b"x", "text/plain")},
                    ),
                    503,
                    "storage_unavailable",
                )
                _error(client.get(f"{mount}/"), 503, "storage_unavailable")
                _error(client.get(f"{mount}/usage"), 503, "storage_unavailable")
                _error(
                    client.post(
                        f"{mount}/upload-url",
                        headers=ORIGIN,
                        json={"filename": "a.txt", "mime_type": "text/plain"},
                    ),
                    503,
                    "storage_unavailable",
                )
                _error(client.get(f"{mount}/{uuid.uuid4()}/info"), 503, "storage_unavailable")
                _error(
                    client.get(f"{mount}/{uuid.uuid4()}/download-url"), 503, "storage_unavailable"
                )
            # the rest of the service is unaffected
            assert client.get("/api").status_code == 200
            assert _json(client.get("/admin/db/health"))["status"] == "healthy"
    finally:
        container.remove(force=True)


def _wait_healthy(client: httpx.Client, container: Any, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            logs = container.logs(tail=30).decode(errors="replace")
            pytest.fail(f"backend exited at start:\n{logs}")
        try:
            resp = client.get("/health", timeout=2.0)
            if resp.status_code == 200 and resp.json().get("status") == "healthy":
                return
            last = f"{resp.status_code} {resp.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)  # poll interval, bounded by the deadline above
    pytest.fail(f"backend not healthy within {deadline_s:g}s: {last}")


# --- sessions and RBAC -------------------------------------------------------------------


def test_no_session_gives_401_on_protected_routes(api: httpx.Client) -> None:
    # a Host other than localhost/127.0.0.1 turns the dev bypass off for the request
    _error(api.get("/api", headers=FOREIGN_HOST), 401, "unauthorized")
    _error(api.get("/admin", headers=FOREIGN_HOST), 401, "unauthorized")
    _error(api.get("/admin/db/health", headers=FOREIGN_HOST), 401, "unauthorized")
    for path in ("/api/blobs/", "/api/blobs", "/blobs/", f"/blobs/{uuid.uuid4()}/download-url"):
        _error(api.get(path, headers=FOREIGN_HOST), 401, "unauthorized")
    session = api.get("/auth/session", headers=FOREIGN_HOST)
    assert session.status_code == 200
    assert _json(session) == {"user": None} or _json(session)["user"] is None
    # the real service's prefix check would let this through; the reference must not
    _error(api.get("/api", headers={"Host": "localhost.example"}), 401, "unauthorized")


@pytest.fixture
def session_user(shared_stack: Stack) -> Iterator[Callable[[str], str]]:
    """Make a user with a role and a live session; everything made is removed afterwards."""
    made: list[str] = []

    def make(role: str) -> str:
        token = secrets.token_urlsafe(32)
        email = f"t-{uuid.uuid4().hex[:8]}@example.test"
        with psycopg.connect(shared_stack.database_url(), connect_timeout=10) as conn:
            row = conn.execute(
                "INSERT INTO users (email, name, role, approved, age_verified, tos_accepted) "
                "VALUES (%s, %s, %s, true, true, true) RETURNING id",
                (email, "Test User", role),
            ).fetchone()
            assert row is not None
            made.append(str(row[0]))
            conn.execute(
                "INSERT INTO sessions (token, user_id, expires_at) "
                "VALUES (%s, %s, now() + interval '1 hour')",
                (token, row[0]),
            )
        return token

    yield make
    if made:
        with psycopg.connect(shared_stack.database_url(), connect_timeout=10) as conn:
            conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


def test_session_cookie_roles(api: httpx.Client, session_user: Callable[[str], str]) -> None:
    token = session_user("user")
    as_user = {**FOREIGN_HOST, "Cookie": f"session={token}"}
    me = _json(api.get("/auth/session", headers=as_user))["user"]
    assert me is not None
    assert me["role"] == "user"
    assert me["id"] != DEV_USER_ID
    assert api.get("/api", headers=as_user).status_code == 200
    _error(api.get("/admin", headers=as_user), 403, "forbidden")
    _error(api.get("/admin/db/health", headers=as_user), 403, "forbidden")
    _error(api.get("/admin/users", headers=as_user), 403, "forbidden")

    admin_token = session_user("admin")
    as_admin = {**FOREIGN_HOST, "Cookie": f"session={admin_token}"}
    admin = api.get("/admin", headers=as_admin)
    assert admin.status_code == 200
    assert _json(admin)["role_required"] == "admin"

    # signing out deletes the session: the same cookie is anonymous afterwards
    out = api.post("/auth/signout", headers={**as_user, **ORIGIN})
    assert out.status_code == 200
    _error(api.get("/api", headers=as_user), 401, "unauthorized")
    bogus = {**FOREIGN_HOST, "Cookie": f"session={secrets.token_urlsafe(16)}"}
    _error(api.get("/api", headers=bogus), 401, "unauthorized")


# --- the bypass switched off ----------------------------------------------------------------


def test_bypass_off_stack(make_stack: Callable[..., Stack]) -> None:
    off = ("--set", "auth.dev_bypass=false")
    stack = make_stack()
    stack.up(*off)
    backend_env = dict(e.split("=", 1) for e in stack.container("backend").attrs["Config"]["Env"])
    assert backend_env["AUTH_DEV_BYPASS"] == "false"
    with _client(stack.backend_url()) as client:
        session = client.get("/auth/session")
        assert session.status_code == 200
        assert _json(session)["user"] is None
        _error(client.get("/api"), 401, "unauthorized")
        _error(client.get("/admin"), 401, "unauthorized")
        _error(client.get("/api/blobs/"), 401, "unauthorized")
        # public routes still answer
        assert _json(client.get("/health"))["status"] == "healthy"
        assert _json(client.get("/auth/providers")) == []
    status = json.loads(stack.cli("status", "--json", *off).stdout)
    assert all(s["healthy"] for s in status["services"]), status
