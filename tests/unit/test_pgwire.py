"""The minimal Postgres client: when it applies, SCRAM as the RFC says, and the message flow
against a scripted server on a loopback socket (the real server is the integration tests')."""

from __future__ import annotations

import base64
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from devenv.probes import pgwire
from devenv.probes.base import ProbeFailure


def test_only_loopback_urls_without_options_are_served() -> None:
    target = pgwire.usable("postgres://ignition:p%40ss@127.0.0.1:5433/ignition")
    assert target == pgwire.Target("127.0.0.1", 5433, "ignition", "p@ss", "ignition")
    assert pgwire.usable("postgresql://u@localhost/db") is not None
    for other in (
        "postgres://u:p@db.example:5432/db",  # a real provider: libpq, TLS
        "postgres://u:p@127.0.0.1:5432/db?sslmode=require",
        "postgres://u:p@127.0.0.1:5432,127.0.0.1:5433/db",
        "mysql://u:p@127.0.0.1/db",
        "postgres://127.0.0.1/db",  # no user
    ):
        assert pgwire.usable(other) is None, other


def test_scram_sha_256_matches_rfc_7677() -> None:
    bare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = (
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final, server_signature = pgwire.scram_client_final("pencil", bare, server_first)
    assert final == (
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert base64.b64encode(server_signature).decode() == (
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    )


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _row(*values: str | None) -> bytes:
    out = struct.pack("!H", len(values))
    for v in values:
        out += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v.encode()
    return _message(b"D", out)


def _error(code: str, text: str) -> bytes:
    return _message(b"E", f"SFATAL\0C{code}\0M{text}\0\0".encode())


READY = _message(b"Z", b"I")
OK = _message(b"R", struct.pack("!I", 0))


@pytest.fixture
def server() -> Iterator[Callable[..., pgwire.Target]]:
    """A one-connection scripted server: it records what it got and answers as told."""
    sockets: list[socket.socket] = []

    def serve(*answers: bytes, seen: list[bytes] | None = None) -> pgwire.Target:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sockets.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                for answer in answers:
                    got = conn.recv(65536)
                    if seen is not None:
                        seen.append(got)
                    conn.sendall(answer)
                conn.recv(65536)  # Terminate

        threading.Thread(target=run, daemon=True).start()
        return pgwire.Target("127.0.0.1", listener.getsockname()[1], "u", "pw", "db")

    yield serve
    for s in sockets:
        s.close()


def test_a_trusted_session_runs_the_query_read_only(server: Callable[..., pgwire.Target]) -> None:
    seen: list[bytes] = []
    target = server(
        OK + _message(b"S", b"server_version\x0015\0") + READY,
        _message(b"T", b"") + _row("1") + _message(b"C", b"SELECT 1\0") + READY,
        seen=seen,
    )
    assert pgwire.query(target, "SELECT 1") == [["1"]]
    startup = seen[0]
    assert b"default_transaction_read_only\0on\0" in startup
    assert b"user\0u\0database\0db\0" in startup
    assert seen[1] == _message(b"Q", b"SELECT 1\0")


def test_a_wrong_password_is_permanent_and_a_starting_server_is_not(
    server: Callable[..., pgwire.Target],
) -> None:
    with pytest.raises(pgwire.ServerError) as wrong:
        pgwire.query(server(_error("28P01", 'password authentication failed for user "u"')), "x")
    assert wrong.value.message == 'FATAL:  password authentication failed for user "u"'
    assert wrong.value.transient is False
    with pytest.raises(pgwire.ServerError) as starting:
        pgwire.query(server(_error("57P03", "the database system is starting up")), "x")
    assert starting.value.transient is True


def test_md5_answers_with_the_salted_hash(server: Callable[..., pgwire.Target]) -> None:
    seen: list[bytes] = []
    challenge = _message(b"R", struct.pack("!I", 5) + b"salt")
    target = server(challenge, OK + READY, _row(None) + READY, seen=seen)
    assert pgwire.query(target, "SELECT NULL") == [[None]]
    # libpq: "md5" + md5(md5(password + user).hexdigest() + salt), for pw, u and "salt"
    assert seen[1] == _message(b"p", b"md5aa2ff04e276dc58a056c53798f35e83b\0")


def test_a_closed_port_is_a_transient_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProbeFailure) as caught:
        pgwire.query(pgwire.Target("127.0.0.1", port, "u", "p", "d"), "SELECT 1")
    assert caught.value.transient
