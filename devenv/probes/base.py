"""Readiness probes: one small object per protocol, each a single attempt that passes or raises."""

from __future__ import annotations

import hashlib
import http.client
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlsplit

from devenv.model import LOOPBACK, S3Target

if TYPE_CHECKING:
    from devenv.probes.s3xml import DeleteError, ListedObject, Listing


class ProbeFailure(Exception):
    """One failed attempt; `transient` failures are worth retrying until the deadline."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class Probe(Protocol):
    name: str

    @property
    def endpoint(self) -> str: ...

    def attempt(self) -> str: ...


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class _Http:
    """One keep-alive HTTP/1.1 connection from the standard library.

    Probes run on every `up` and `status`; http.client costs nothing to import, where an
    HTTP client library costs tens of milliseconds of start-up (httpx still serves `check`).
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or LOOPBACK
        self.port = parts.port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                import ssl

                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        reused = self._conn is not None
        conn = self._connection()
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            resp = conn.getresponse()
            content = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if reused and isinstance(exc, _STALE):
                # the server closed the kept-alive connection while it was idle; every
                # request devenv sends is idempotent, so once more on a new connection
                return self.request(method, path, headers=headers, body=body)
            raise ProbeFailure(first_line(exc) if str(exc) else type(exc).__name__) from exc
        if resp.getheader("connection", "").lower() == "close":
            self.close()
        return Response(resp.status, content, {k.lower(): v for k, v in resp.getheaders()})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    content_type: str  # "" when the object has none
    metadata: tuple[tuple[str, str], ...]  # user metadata, names in lower case, sorted


class S3Client:
    """The handful of path-style S3 calls devenv needs, signed with SigV4."""

    def __init__(self, target: S3Target, *, timeout: float = 3.0) -> None:
        self.target = target
        self._http = _Http(target.endpoint, timeout)
        self._prefix = urlsplit(target.endpoint).path.rstrip("/")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> S3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _path(self, key: str | None = None) -> str:
        base = f"{self._prefix}/{quote(self.target.bucket)}"
        return base if key is None else f"{base}/{quote(key, safe='/-_.~')}"

    def request(
        self,
        method: str,
        key: str | None = None,
        body: bytes = b"",
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One signed request; `headers` (content type, metadata) are signed and sent."""
        from devenv.probes.sigv4 import sign_headers

        path = self._path(key) + (f"?{query}" if query else "")
        url = self.target.endpoint.rstrip("/").removesuffix(self._prefix) + path
        signed = sign_headers(
            method,
            url,
            access_key=self.target.access_key,
            secret_key=self.target.secret_key,
            region=self.target.region,
            payload=body,
            extra_headers=dict(headers or {}),
        )
        return self._http.request(method, path, headers=signed, body=body)

    def bucket_exists(self) -> bool:
        resp = self.request("HEAD")
        if resp.status_code == 404:
            return False
        self._expect(resp, "HEAD bucket", 200)
        return True

    def list_one(self) -> None:
        """List at most one key of the bucket: reads, never writes."""
        self._expect(self.request("GET", query="list-type=2&max-keys=1"), "LIST bucket", 200)

    def create_bucket(self) -> None:
        resp = self.request("PUT")
        if resp.status_code == 409:  # already owned by us
            return
        self._expect(resp, "CREATE bucket", 200)

    def put(self, key: str, body: bytes) -> None:
        self._expect(self.request("PUT", key, body), f"PUT {key}", 200)

    def get(self, key: str) -> bytes | None:
        resp = self.request("GET", key)
        if resp.status_code == 404:
            return None
        self._expect(resp, f"GET {key}", 200)
        return bytes(resp.content)

    def delete(self, key: str) -> None:
        self._expect(self.request("DELETE", key), f"DELETE {key}", 200, 204)

    # --- bulk calls (snapshots): the bucket's whole content, with what clients see of it

    def list_objects(
        self, prefix: str = "", *, delimiter: str = "", page_size: int = 1000
    ) -> Listing:
        """Every key under `prefix` (ListObjectsV2, page after page), or with `delimiter`
        also the common prefixes right under it."""
        from devenv.probes.s3xml import Listing, list_query, parse_listing

        objects: list[ListedObject] = []
        prefixes: list[str] = []
        token: str | None = None
        while True:
            query = list_query(prefix, delimiter=delimiter, token=token, page_size=page_size)
            resp = self.request("GET", query=query)
            self._expect(resp, "LIST bucket", 200)
            try:
                page = parse_listing(resp.content)
            except ValueError as exc:
                raise ProbeFailure(f"LIST bucket: {exc}", transient=False) from exc
            objects += page.objects
            prefixes += page.prefixes
            if page.next_token is None:
                return Listing(tuple(objects), tuple(prefixes))
            token = page.next_token

    def get_object(self, key: str) -> StoredObject | None:
        """An object's bytes, content type and user metadata; None when there is none."""
        from devenv.probes.s3xml import metadata_of

        resp = self.request("GET", key)
        if resp.status_code == 404:
            return None
        self._expect(resp, f"GET {key}", 200)
        return StoredObject(
            resp.content, resp.headers.get("content-type", ""), metadata_of(resp.headers)
        )

    def put_object(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "",
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        from devenv.probes.s3xml import metadata_headers

        headers = metadata_headers(metadata)
        if content_type:
            headers["content-type"] = content_type
        self._expect(self.request("PUT", key, body, headers=headers), f"PUT {key}", 200)

    def delete_objects(self, keys: Sequence[str]) -> list[DeleteError]:
        """Delete up to 1000 keys in one request; the keys it could not delete, and why."""
        from devenv.probes.s3xml import content_md5, delete_body, parse_delete_errors

        body = delete_body(keys)
        headers = {"content-md5": content_md5(body), "content-type": "application/xml"}
        resp = self.request("POST", body=body, query="delete", headers=headers)
        self._expect(resp, f"DELETE {len(keys)} object(s)", 200)
        try:
            return parse_delete_errors(resp.content)
        except ValueError as exc:
            raise ProbeFailure(f"DELETE objects: {exc}", transient=False) from exc

    @staticmethod
    def _expect(resp: Response, what: str, *codes: int) -> None:
        if resp.status_code in codes:
            return
        text = resp.text[:200].replace("\n", " ")
        code = ""
        if "<Code>" in text:
            code = text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        permanent = code in {
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied",
            "NoSuchBucket",
        }
        raise ProbeFailure(
            f"{what} answered {resp.status_code} {code}".strip(), transient=not permanent
        )


@dataclass
class S3Probe:
    """Bucket round trip: put a scratch object, read it back, delete it again (the store is
    left as it was found). A protected store, or a liveness probe (`read_only`, `reason` says
    which), is only read: HEAD the bucket and list one key."""

    target: S3Target
    read_only: bool = False
    name: str = "objectstore"
    reason: str = "protected provider"

    @property
    def endpoint(self) -> str:
        return f"{self.target.endpoint.rstrip('/')}/{self.target.bucket}"

    def attempt(self) -> str:
        if self.read_only:
            with S3Client(self.target) as s3:
                if not s3.bucket_exists():
                    raise ProbeFailure(
                        f"bucket {self.target.bucket} does not exist", transient=False
                    )
                s3.list_one()
            return f"bucket readable (read-only probe: {self.reason})"
        key = f".devenv-probe/{uuid.uuid4().hex}"
        body = uuid.uuid4().bytes
        with S3Client(self.target) as s3:
            s3.put(key, body)
            try:
                got = s3.get(key)
            finally:
                s3.delete(key)
        if got != body:
            digest = hashlib.sha256(got or b"").hexdigest()[:12]
            raise ProbeFailure(f"read back different bytes (sha256 {digest})", transient=False)
        return "put/get/delete round trip ok"


@dataclass
class HttpProbe:
    """GET a URL and expect a status (and, for /health, `status: healthy`)."""

    url: str
    name: str = "backend"
    expect_status: int = 200
    expect_healthy: bool = True
    timeout: float = 2.0

    @property
    def endpoint(self) -> str:
        return self.url

    def attempt(self) -> str:
        parts = urlsplit(self.url)
        client = _Http(self.url, self.timeout)
        try:
            resp = client.request("GET", parts.path or "/")
        finally:
            client.close()
        if resp.status_code != self.expect_status:
            raise ProbeFailure(f"GET answered {resp.status_code}, expected {self.expect_status}")
        if self.expect_healthy:
            try:
                status = json.loads(resp.content).get("status")
            except (ValueError, AttributeError) as exc:
                raise ProbeFailure("body is not a JSON object") from exc
            if status != "healthy":
                raise ProbeFailure(f"status is {status!r}, expected 'healthy'")
        return f"GET {self.expect_status}"
