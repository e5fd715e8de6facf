"""The dashboard hub on a fake engine: shared cheap polling, slow probes, redaction, actions."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable

import pytest

from devenv.errors import LockedError
from devenv.ui.hub import INTERNAL, Engine, Hub, Subscriber
from tests.unit.ui_fake import SECRET, FakeEngine


def run(body: Callable[[Hub, FakeEngine], Awaitable[None]], *, interval: float = 0.05) -> None:
    engine = FakeEngine()
    _typed: Engine = engine  # the fake conforms to the protocol the adapter implements

    async def main() -> None:
        hub = Hub(engine, interval=interval)
        poller = asyncio.create_task(hub.poll_forever())
        try:
            await body(hub, engine)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            await hub.close()

    asyncio.run(main())


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def drain(sub: Subscriber, seen: dict[str, str], timeout: float = 0.2) -> None:
    """Collect what the hub offered within `timeout`."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                items = await sub.next()
        except TimeoutError:
            return
        assert items is not None
        seen.update(items)


def test_nothing_is_polled_while_no_page_listens() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        await asyncio.sleep(0.3)
        assert engine.observations == 0
        with hub.subscribe():
            await until(lambda: engine.observations >= 1)
        seen = engine.observations
        await asyncio.sleep(0.3)
        assert engine.observations <= seen + 1  # at most the pass that was under way

    run(body)


def test_one_pass_per_interval_shared_by_every_page() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        with hub.subscribe(), hub.subscribe(), hub.subscribe():
            await until(lambda: engine.observations >= 1)
            start, began = engine.observations, time.monotonic()
            await asyncio.sleep(1.0)
            elapsed = time.monotonic() - began
            passes = engine.observations - start
        # three pages, one poller: about one pass per interval, never one per page
        assert passes <= elapsed / hub.interval + 2
        assert passes >= 5
        assert max(engine.probes.values()) <= engine.observations

    run(body, interval=0.1)


def test_a_slow_probe_never_holds_back_another_row() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        gate = threading.Event()
        engine.slow["backend"] = gate
        with hub.subscribe():
            await until(
                lambda: (
                    'data-service="postgres" data-health="healthy"'
                    in hub.latest.get("services", "")
                )
            )
            engine.healthy["postgres"] = False
            began = time.monotonic()
            await until(
                lambda: 'data-service="postgres" data-health="unhealthy"' in hub.latest["services"]
            )
            assert time.monotonic() - began < 0.5
            # the backend probe is still stuck in its first attempt, and was not started again
            assert engine.probes["backend"] == 1
            gate.set()
            await until(lambda: 'data-service="backend"' in hub.latest["services"])

    run(body)


def test_every_fragment_is_redacted() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        seen: dict[str, str] = {}
        with hub.subscribe() as sub:
            await until(lambda: 'data-service="backend"' in hub.latest.get("services", ""))
            assert hub.start("checks")
            await until(lambda: 'data-run="1"' in hub.latest["checks"])
            await until(lambda: not hub.busy)
            assert hub.start("up")
            await until(lambda: "stack is up" in hub.latest["action"])
            await drain(sub, seen)
        assert set(seen) >= {"services", "checks", "phases", "action", "meta"}
        for name, text in seen.items():
            assert SECRET not in text, name
        assert "****" in seen["services"]
        assert "creating postgres with ****" in seen["action"]

    run(body)


def test_a_slow_page_gets_only_the_newest_version() -> None:
    sub = Subscriber()
    sub.offer("services", "old")
    sub.offer("services", "new")
    sub.offer("checks", "c")

    async def take() -> list[tuple[str, str]] | None:
        return await sub.next()

    assert asyncio.run(take()) == [("services", "new"), ("checks", "c")]
    sub.offer("services", "newer")
    sub.close()
    assert asyncio.run(take()) is None  # a closed stream ends, whatever is pending


def test_an_unchanged_fragment_is_not_sent_again() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        with hub.subscribe() as sub:
            await until(lambda: 'data-service="backend"' in hub.latest.get("services", ""))
            await drain(sub, {})
            seen: dict[str, str] = {}
            await drain(sub, seen, timeout=1.2)
            assert "services" not in seen  # nothing changed in the stack
            assert "meta" in seen  # the heartbeat: the time of the pass, to the second
            engine.healthy["objectstore"] = False
            await drain(sub, seen, timeout=0.3)
            assert 'data-service="objectstore" data-health="unhealthy"' in seen["services"]

    run(body)


def test_a_new_page_gets_everything_at_once() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        with hub.subscribe():
            await until(lambda: 'data-service="backend"' in hub.latest.get("services", ""))
        with hub.subscribe() as late:
            items = await late.next()
        assert items is not None
        names = {name for name, _ in items}
        assert names == {"meta", "action", "services", "watch", "checks", "phases"}

    run(body)


def test_one_action_at_a_time() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        gate = threading.Event()
        original = engine.restart

        def slow_restart(service: str, progress: Callable[[str], None]) -> str:
            gate.wait(5)
            return original(service, progress)

        engine.restart = slow_restart  # type: ignore[method-assign]
        assert hub.start("restart postgres")
        assert hub.busy == "restart postgres"
        assert not hub.start("checks")
        assert 'data-busy="true"' in hub.latest["action"]
        gate.set()
        await until(lambda: hub.busy is None)
        assert "postgres restarted" in hub.latest["action"]
        assert 'data-busy="false"' in hub.latest["action"]
        assert hub.start("checks")

    run(body)


def test_a_failed_action_says_why_in_one_line() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        engine.fail_restart = LockedError("another devenv is working on project x")
        assert hub.start("restart backend")
        await until(lambda: hub.busy is None)
        assert "failed" in hub.latest["action"]
        assert "Busy: another devenv is working on project x" in hub.latest["action"]

    run(body)


def test_each_check_run_replaces_the_last_and_draws_the_graph() -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        assert "waiting for the first check run" in hub.latest["phases"]
        for number in (1, 2):
            assert hub.start("checks")
            await until(lambda n=number: f'data-run="{n}"' in hub.latest["checks"])  # type: ignore[misc]
            await until(lambda: hub.busy is None)
        assert engine.check_runs == 2
        assert "Run #2" in hub.latest["checks"]
        assert 'data-phase="11"' in hub.latest["phases"]
        assert "check run #2" in hub.latest["phases"]

    run(body)


def test_a_bug_is_logged_with_its_traceback_and_the_page_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(hub: Hub, engine: FakeEngine) -> None:
        engine.fail_restart = KeyError("a bug")
        assert hub.start("restart backend")
        await until(lambda: hub.busy is None)
        assert INTERNAL in hub.latest["action"]
        assert "a bug" not in hub.latest["action"]  # what a bug says stays in the terminal
        assert hub.start("checks")  # the page is not stuck on the failed action
        await until(lambda: hub.busy is None)

    with caplog.at_level(logging.ERROR, logger="devenv.ui"):
        run(body)
    [record] = [r for r in caplog.records if r.name == "devenv.ui"]
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
