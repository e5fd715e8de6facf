"""A minimal Postgres client for the local stand-ins: one read-only session, simple queries.

`status` and a no-op `up` ask Postgres two things (`SELECT 1`, the `_sqlx_migrations` rows);
importing psycopg for that costs about 60 ms of their 0.3 s. This speaks the protocol itself
(version 3: startup, trust / cleartext / MD5 / SCRAM-SHA-256 authentication, the simple query
protocol, text results) and nothing more: no TLS, no unix sockets, no libpq options. `usable`
says when it applies, a loopback URL without options, which is every URL devenv makes for its
own stand-ins; anything else (a real provider, sslmode, several hosts) goes to psycopg. The
session is read-only from its first message (`default_transaction_read_only=on`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from devenv.probes.base import ProbeFailure

PROTOCOL = 196608  # 3.0
# SQLSTATEs that waiting cannot cure: wrong password, no such database or role
PERMANENT = {"28P01", "28000", "3D000"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ServerError(ProbeFailure):
    """An ErrorResponse, with its SQLSTATE."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, transient=code not in PERMANENT)
        self.code = code


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    database: str


def usable(url: str) -> Target | None:
    """The URL's parts when this client can serve it (loopback, no options), else None."""
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("postgres", "postgresql") or parts.query or host not in _LOOPBACK:
        return None
    user = unquote(parts.username or "")
    database = unquote(parts.path.lstrip("/")) or user
    if not user or "," in parts.netloc:
        return None
    return Target(host, port, user, unquote(parts.password or ""), database)


Rows = list[list[str | None]]


def query(target: Target, *statements: str, timeout: float = 2.0) -> Rows:
    """Run simple queries in one read-only session, one after the other; the last one's rows."""

    def nth(_rows: Rows, index: int) -> str | None:
        return statements[index] if index < len(statements) else None

    return queries(target, nth, timeout=timeout)


def queries(
    target: Target, next_sql: Callable[[Rows, int], str | None], *, timeout: float = 2.0
) -> Rows:
    """One read-only session; `next_sql(last rows, index)` names each statement, None ends."""
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
            session = _Session(sock)
            session.start(target)
            rows: Rows = []
            index = 0
            while (sql := next_sql(rows, index)) is not None:
                rows = session.query(sql)
                index += 1
            session.send(b"X", b"")
            return rows
    except OSError as exc:
        raise ProbeFailure(exc.strerror or str(exc) or type(exc).__name__) from exc


# --- SCRAM-SHA-256 (RFC 5802, RFC 7677) -------------------------------------------------------


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_client_final(
    password: str, client_first_bare: str, server_first: str
) -> tuple[str, bytes]:
    """The client-final message and the server signature to expect, for one exchange."""
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salt = base64.b64decode(fields["s"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(fields["i"]))
    client_key = _hmac(salted, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = _hmac(stored_key, auth)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_signature = _hmac(_hmac(salted, b"Server Key"), auth)
    return f"{without_proof},p={base64.b64encode(proof).decode()}", server_signature


# --- the protocol ---------------------------------------------------------------------------


class _Session:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, kind: bytes, payload: bytes) -> None:
        self.sock.sendall(kind + struct.pack("!I", len(payload) + 4) + payload)

    def receive(self) -> tuple[bytes, bytes]:
        header = self._read(5)
        (length,) = struct.unpack("!I", header[1:])
        return header[:1], self._read(length - 4)

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProbeFailure("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def start(self, target: Target) -> None:
        params = {
            "user": target.user,
            "database": target.database,
            "application_name": "devenv",
            "default_transaction_read_only": "on",
            "bytea_output": "hex",
        }
        body = b"".join(f"{k}\0{v}\0".encode() for k, v in params.items()) + b"\0"
        self.sock.sendall(struct.pack("!II", len(body) + 8, PROTOCOL) + body)
        self.scram: tuple[str, bytes] | None = None
        self.bare = ""
        while True:
            kind, payload = self.receive()
            if kind == b"E":
                raise _failure(payload)
            if kind == b"Z":
                return
            if kind == b"R":  # else ParameterStatus, BackendKeyData, notices
                self._authenticate(struct.unpack("!I", payload[:4])[0], payload[4:], target)

    def _authenticate(self, code: int, data: bytes, target: Target) -> None:
        if code == 0:  # AuthenticationOk
            return
        if code == 3:  # cleartext
            self.send(b"p", target.password.encode() + b"\0")
        elif code == 5:  # MD5 with a 4-byte salt: the protocol's own scheme
            inner = hashlib.md5((target.password + target.user).encode()).hexdigest()  # noqa: S324
            outer = hashlib.md5(inner.encode() + data[:4]).hexdigest()  # noqa: S324
            self.send(b"p", f"md5{outer}".encode() + b"\0")
        elif code == 10:  # SASL: the mechanisms offered
            if b"SCRAM-SHA-256\0" not in data:
                raise ProbeFailure("the server offers no SCRAM-SHA-256", transient=False)
            self.bare = f"n=,r={base64.b64encode(os.urandom(18)).decode()}"
            first = f"n,,{self.bare}".encode()
            self.send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
        elif code == 11:  # SASL continue: the server-first message
            self.scram = scram_client_final(target.password, self.bare, data.decode())
            self.send(b"p", self.scram[0].encode())
        elif code == 12:  # SASL final: the server proves it knows the password too
            expected = base64.b64encode(self.scram[1]).decode() if self.scram else ""
            if data.decode() != f"v={expected}":
                raise ProbeFailure("the server's SCRAM signature is wrong", transient=False)
        else:
            raise ProbeFailure(f"authentication method {code} is not supported", transient=False)

    def query(self, sql: str) -> list[list[str | None]]:
        self.send(b"Q", sql.encode() + b"\0")
        rows: list[list[str | None]] = []
        error: ServerError | None = None
        while True:
            kind, payload = self.receive()
            if kind == b"T":
                rows = []  # a new result: only the last one is returned
            elif kind == b"D":
                rows.append(_data_row(payload))
            elif kind == b"E":
                error = _failure(payload)
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows


def _data_row(payload: bytes) -> list[str | None]:
    (count,) = struct.unpack("!H", payload[:2])
    at = 2
    values: list[str | None] = []
    for _ in range(count):
        (size,) = struct.unpack("!i", payload[at : at + 4])
        at += 4
        if size < 0:
            values.append(None)
            continue
        values.append(payload[at : at + size].decode())
        at += size
    return values


def _failure(payload: bytes) -> ServerError:
    fields = {
        item[:1]: item[1:].decode("utf-8", "replace") for item in payload.split(b"\0") if item
    }
    severity = fields.get(b"S", "ERROR")
    message = fields.get(b"M", "unknown error")
    return ServerError(f"{severity}:  {message}", code=fields.get(b"C", ""))
