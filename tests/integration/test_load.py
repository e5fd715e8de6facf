"""A bounded burst against the shared stack: no errors, and `status` stays healthy during it."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.conftest import Stack

REQUESTS = 2000
CONCURRENCY = 50
FRONTEND_ORIGIN = "http://localhost:3000"


class Burst:
    """REQUESTS GETs over CONCURRENCY threads, each with its own keep-alive connection."""

    def __init__(self, base_url: str, paths: list[str]) -> None:
        self.base_url = base_url
        self.paths = paths
        self.tickets = itertools.count()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def worker(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while (i := next(self.tickets)) < REQUESTS:
                path = self.paths[i % len(self.paths)]
                t0 = time.perf_counter()
                try:
                    r = client.get(path)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - t0
                with self.lock:
                    self.latencies.append(took)
                    if r.status_code != 200:
                        self.errors.append(f"{path}: {r.status_code} {r.text[:120]}")

    def run(self) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            for future in [pool.submit(self.worker) for _ in range(CONCURRENCY)]:
                future.result()
        return time.perf_counter() - started


def _status(stack: Stack) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devenv", "status", "--json"],
        cwd=stack.root,
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_burst_of_2000_requests_has_no_errors_and_status_stays_healthy(
    shared_stack: Stack,
) -> None:
    payload = f"load test blob {uuid.uuid4()}\n".encode()
    origin = {"Origin": FRONTEND_ORIGIN}
    with httpx.Client(base_url=shared_stack.backend_url(), timeout=30) as client:
        up = client.post("/api/blobs/upload", headers=origin, files={"file": ("load.txt", payload)})
        assert up.status_code == 200, up.text
        blob_id = str(up.json()["id"])
        try:
            read = client.get(f"/api/blobs/{blob_id}")
            assert read.status_code == 200
            assert read.content == payload
            burst = Burst(shared_stack.backend_url(), ["/health", "/api", f"/api/blobs/{blob_id}"])
            statuses = [_status(shared_stack) for _ in range(2)]
            elapsed = burst.run()
            reports = [(*p.communicate(timeout=120), p.returncode) for p in statuses]
        finally:
            client.delete(f"/api/blobs/{blob_id}", headers=origin)

    assert burst.errors == [], f"{len(burst.errors)} errors, first: {burst.errors[:5]}"
    assert len(burst.latencies) == REQUESTS
    for out, err, code in reports:
        assert code == 0, err
        services = json.loads(out)["services"]
        assert [s["name"] for s in services] == ["postgres", "objectstore", "backend"]
        for svc in services:
            assert svc["healthy"] is True, svc
    ordered = sorted(burst.latencies)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    sys.stderr.write(
        f"\nload: {REQUESTS} requests, {CONCURRENCY} concurrent, {elapsed:.2f}s, "
        f"{REQUESTS / elapsed:.0f} req/s, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms\n"
    )
    assert elapsed < 30, f"burst took {elapsed:.1f}s"
