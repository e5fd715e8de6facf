"""devenv's own S3 calls for snapshots: listing page after page, objects with their content
type and metadata, batch deletes; documents checked without a server, signing against
botocore (the integration tests run them on the real object store)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import pytest

from devenv.model import S3Target
from devenv.probes.base import ProbeFailure, Response, S3Client
from devenv.probes.s3xml import (
    ListedObject,
    content_md5,
    delete_body,
    list_query,
    metadata_headers,
    metadata_of,
    parse_delete_errors,
    parse_listing,
)
from devenv.probes.sigv4 import sign_headers

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
TARGET = S3Target("http://127.0.0.1:9000", "ignition", "us-east-1", "AKID", "SECRET")


def page(keys: list[str], *, token: str | None = None, prefixes: tuple[str, ...] = ()) -> bytes:
    contents = "".join(
        f"<Contents><Key>{escape(k)}</Key><LastModified>2026-01-06T12:00:0{i}.000Z</LastModified>"
        f"<ETag>&quot;x&quot;</ETag><Size>{10 + i}</Size></Contents>"
        for i, k in enumerate(keys)
    )
    common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in prefixes)
    more = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    truncated = "true" if token else "false"
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><ListBucketResult{NS}><Name>ignition</Name>"
        f"<IsTruncated>{truncated}</IsTruncated>{contents}{common}{more}</ListBucketResult>"
    ).encode()


def test_list_query_is_sorted_and_percent_encoded() -> None:
    assert list_query() == "list-type=2&max-keys=1000"
    query = list_query(".devenv-test/", delimiter="/", token="a+b/c=", page_size=2)
    assert query == (
        "continuation-token=a%2Bb%2Fc%3D&delimiter=%2F&list-type=2&max-keys=2"
        "&prefix=.devenv-test%2F"
    )
    assert dict(parse_qsl(query))["continuation-token"] == "a+b/c="


def test_a_listing_page_gives_keys_stamps_prefixes_and_the_next_token() -> None:
    listed = parse_listing(page(["a", "b&c"], token="t1", prefixes=("p/",)))
    assert listed.objects == (
        ListedObject("a", "2026-01-06T12:00:00.000Z", 10),
        ListedObject("b&c", "2026-01-06T12:00:01.000Z", 11),
    )
    assert listed.prefixes == ("p/",)
    assert listed.next_token == "t1"
    last = parse_listing(page(["z"]).replace(NS.encode(), b""))  # no namespace: the same
    assert [o.key for o in last.objects] == ["z"]
    assert last.next_token is None


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (b"not xml", "not an XML document"),
        (b"<Error><Code>AccessDenied</Code></Error>", "expected ListBucketResult, got Error"),
        (
            b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
            "without NextContinuationToken",
        ),
    ],
)
def test_a_wrong_listing_is_a_value_error(document: bytes, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_listing(document)


def test_delete_body_escapes_keys_and_carries_its_md5() -> None:
    body = delete_body(["a<b", "c&d"])
    assert b"<Key>a&lt;b</Key>" in body
    assert b"<Key>c&amp;d</Key>" in body
    assert b"<Quiet>true</Quiet>" in body
    assert content_md5(body) == base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324
    with pytest.raises(ValueError, match="not 0"):
        delete_body([])
    with pytest.raises(ValueError, match="not 1001"):
        delete_body(["k"] * 1001)


def test_delete_errors_are_read_from_the_result() -> None:
    document = (
        f"<DeleteResult{NS}><Deleted><Key>ok</Key></Deleted><Error><Key>x</Key>"
        "<Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>"
    ).encode()
    (error,) = parse_delete_errors(document)
    assert (error.key, error.code, error.message) == ("x", "AccessDenied", "no")


def test_metadata_goes_out_and_comes_back_in_headers() -> None:
    sent = metadata_headers((("Owner", "dev"), ("n", "1")))
    assert sent == {"x-amz-meta-owner": "dev", "x-amz-meta-n": "1"}
    back = metadata_of({**sent, "content-type": "image/png", "etag": "x"})
    assert back == (("n", "1"), ("owner", "dev"))


def test_signed_content_type_and_metadata_match_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = datetime(2026, 1, 6, 12, 0, 0, tzinfo=UTC)
    url = "http://127.0.0.1:9000/ignition/blobs/001"
    extra = {"content-type": "text/csv", "x-amz-meta-owner": "dev"}
    ours = sign_headers(
        "PUT", url, access_key="AKID", secret_key="SECRET", region="us-east-1",
        payload=b"x", now=now, extra_headers=extra,
    )  # fmt: skip
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: now.replace(tzinfo=None)
    )
    request = AWSRequest(method="PUT", url=url, data=b"x", headers=dict(extra))
    request.headers["X-Amz-Content-SHA256"] = ours["x-amz-content-sha256"]
    S3SigV4Auth(Credentials("AKID", "SECRET"), "s3", "us-east-1").add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert (
        "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-owner"
        in (ours["Authorization"])
    )


@dataclass
class Wire:
    """The HTTP connection of one S3Client: records requests, answers from a script."""

    answers: list[Response]
    sent: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        self.sent.append((method, path, dict(headers or {}), body))
        return self.answers.pop(0)

    def close(self) -> None:
        return None


def client(*answers: Response) -> tuple[S3Client, Wire]:
    s3 = S3Client(TARGET)
    wire = Wire(list(answers))
    s3._http = wire  # type: ignore[assignment]
    return s3, wire


def test_listing_follows_continuation_tokens_to_the_last_page() -> None:
    s3, wire = client(Response(200, page(["a", "b"], token="next/1")), Response(200, page(["c"])))
    listed = s3.list_objects("", page_size=2)
    assert [o.key for o in listed.objects] == ["a", "b", "c"]
    first, second = (path for _, path, _, _ in wire.sent)
    assert "continuation-token" not in first
    assert dict(parse_qsl(second.split("?", 1)[1]))["continuation-token"] == "next/1"
    assert all("Authorization" in headers for _, _, headers, _ in wire.sent)


def test_a_listing_the_store_refuses_is_a_probe_failure() -> None:
    s3, _ = client(Response(403, b"<Error><Code>AccessDenied</Code></Error>"))
    with pytest.raises(ProbeFailure, match="LIST bucket answered 403 AccessDenied"):
        s3.list_objects()
    s3, _ = client(Response(200, b"<html>proxy</html>"))
    with pytest.raises(ProbeFailure, match="expected ListBucketResult"):
        s3.list_objects()


def test_objects_keep_their_content_type_and_metadata() -> None:
    headers = {"content-type": "image/png", "x-amz-meta-owner": "dev", "etag": '"x"'}
    s3, wire = client(Response(200, b"\x89PNG", headers), Response(404, b""), Response(200, b""))
    got = s3.get_object("a b/c.png")
    assert got is not None
    assert (got.body, got.content_type, got.metadata) == (
        b"\x89PNG",
        "image/png",
        (("owner", "dev"),),
    )
    assert s3.get_object("gone") is None
    s3.put_object("k", b"x", content_type="text/csv", metadata=(("owner", "dev"),))
    method, path, sent, body = wire.sent[2]
    assert (method, path, body) == ("PUT", "/ignition/k", b"x")
    assert sent["content-type"] == "text/csv"
    assert sent["x-amz-meta-owner"] == "dev"
    assert wire.sent[0][1] == "/ignition/a%20b/c.png"


def test_batch_delete_posts_one_document_with_its_md5() -> None:
    answer = f"<DeleteResult{NS}><Error><Key>b</Key><Code>X</Code></Error></DeleteResult>"
    s3, wire = client(Response(200, answer.encode()))
    errors = s3.delete_objects(["a", "b"])
    assert [e.key for e in errors] == ["b"]
    method, path, headers, body = wire.sent[0]
    assert (method, path) == ("POST", "/ignition?delete")
    assert headers["content-md5"] == content_md5(body)
    assert body == delete_body(["a", "b"])


def test_a_kept_alive_connection_the_server_closed_is_reopened_once() -> None:
    """The server answers one request per connection and then closes it, without saying
    so: the next request on the idle connection fails and goes out again on a new one."""
    import socket
    import threading

    from devenv.probes.base import _Http

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    served: list[int] = []

    def serve() -> None:
        for n in range(2):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(n).encode())
                served.append(n)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    http = _Http(f"http://127.0.0.1:{port}", 5.0)
    try:
        assert http.request("GET", "/").content == b"0"
        assert http.request("GET", "/").content == b"1"
    finally:
        http.close()
        thread.join(timeout=5)
        listener.close()
    assert served == [0, 1]
