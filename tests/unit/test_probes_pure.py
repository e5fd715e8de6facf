"""Pure parts of the probes: SigV4 signing (checked against botocore) and waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devenv.probes.base import ProbeFailure
from devenv.probes.sigv4 import sign_headers
from devenv.probes.waiting import Clock, wait_ready


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "http://127.0.0.1:9000/ignition/.devenv-probe/abc", b"payload"),
        ("GET", "http://127.0.0.1:9000/ignition/a/b%20c.txt", b""),
        ("HEAD", "http://127.0.0.1:9000/ignition", b""),
        ("DELETE", "https://x.r2.cloudflarestorage.com/bucket/u/files/9f.png", b""),
    ],
)
def test_sigv4_matches_botocore(
    method: str, url: str, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = datetime(2026, 1, 6, 12, 0, 0, tzinfo=UTC)
    ours = sign_headers(
        method,
        url,
        access_key="AKID",
        secret_key="SECRET",
        region="us-east-1",
        payload=body,
        now=now,
    )
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: now.replace(tzinfo=None)
    )
    request = AWSRequest(method=method, url=url, data=body)
    signer = S3SigV4Auth(Credentials("AKID", "SECRET"), "s3", "us-east-1")
    request.headers["X-Amz-Content-SHA256"] = ours["x-amz-content-sha256"]
    signer.add_auth(request)
    theirs = request.headers["Authorization"]
    assert ours["Authorization"] == theirs


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class Flaky:
    name = "flaky"
    endpoint = "test://flaky"

    def __init__(self, fail_times: int, *, transient: bool = True) -> None:
        self.left = fail_times
        self.transient = transient

    def attempt(self) -> str:
        if self.left > 0:
            self.left -= 1
            raise ProbeFailure("not yet", transient=self.transient)
        return "ready"


def test_wait_polls_fast_then_backs_off_until_ready() -> None:
    clock = FakeClock()
    result = wait_ready(Flaky(5), timeout=10, clock=Clock(clock.now, clock.sleep))
    assert result.ok
    assert result.attempts == 6
    assert clock.sleeps[0] == pytest.approx(0.02)
    assert clock.sleeps == sorted(clock.sleeps)
    assert max(clock.sleeps) <= 0.25


def test_wait_stops_at_the_deadline_with_the_last_error() -> None:
    clock = FakeClock()
    result = wait_ready(Flaky(10**6), timeout=2.0, clock=Clock(clock.now, clock.sleep))
    assert not result.ok
    assert result.detail == "not yet"
    assert result.fatal is None
    assert clock.t == pytest.approx(2.0)


def test_permanent_failure_stops_at_once() -> None:
    clock = FakeClock()
    result = wait_ready(Flaky(3, transient=False), timeout=10, clock=Clock(clock.now, clock.sleep))
    assert not result.ok
    assert result.attempts == 1
    assert result.fatal == "not yet"


def test_abort_reason_ends_the_wait_early() -> None:
    clock = FakeClock()
    result = wait_ready(
        Flaky(10**6),
        timeout=60,
        abort=lambda: "container exited with code 1",
        clock=Clock(clock.now, clock.sleep),
    )
    assert not result.ok
    assert result.fatal == "container exited with code 1"
    assert clock.t < 1
