"""The dashboard's shared state: one status poller for every open page, the actions, the stream.

While at least one page listens, the hub looks at the engine once a second at most and probes
each service in a thread of its own: a probe still running from the last pass (a backend waiting
on a dead database) is not started again, and never delays the other rows. Every fragment is
rendered once (every value redacted as plain text before the template escapes it), redacted
once more as a whole, and offered to each page; a page that falls behind gets only
the newest version of each fragment. Nothing is polled while no page is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from devenv.errors import DevenvError
from devenv.ui import page
from devenv.ui.views import (
    ActionView,
    Checked,
    CheckRun,
    ServiceView,
    check_view,
    summary,
)
from devenv.ui.watch import watch_view

log = logging.getLogger("devenv.ui")
MAX_PROGRESS_LINES = 40


class Engine(Protocol):
    """What the hub needs of devenv (the adapter; a fake in unit tests)."""

    services: tuple[str, ...]

    def observe(self) -> Any: ...

    def probe(self, observation: Any, service: str) -> ServiceView: ...

    def run_checks(self) -> Checked: ...

    def logs(self, service: str, *, tail: int = 200) -> list[str]: ...

    def up(self, progress: Callable[[str], None]) -> str: ...

    def restart(self, service: str, progress: Callable[[str], None]) -> str: ...

    def redact(self, text: str) -> str: ...

    def watch_text(self) -> str | None: ...


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


# What the page says where a bug (not a handled error) stopped a task; the traceback is logged.
INTERNAL = "internal error: see the terminal devenv ui runs in"


def _clock_time() -> str:
    return datetime.now().astimezone().strftime("%H:%M:%S")  # the viewer's wall clock


class Subscriber:
    """One open page: the newest unsent version of each fragment."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}
        self.ready = asyncio.Event()
        self.closed = False

    def offer(self, name: str, text: str) -> None:
        self.pending[name] = text
        self.ready.set()

    def close(self) -> None:
        """End this page's stream at its next read (the server is shutting down)."""
        self.closed = True
        self.ready.set()

    async def next(self) -> list[tuple[str, str]] | None:
        """What changed since the last call, waiting for something; None once closed."""
        await self.ready.wait()
        if self.closed:
            return None
        self.ready.clear()
        items = list(self.pending.items())
        self.pending.clear()
        return items


class Hub:
    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 1.0,
        alive: Callable[[int], bool] = lambda _pid: True,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.alive = alive
        self.latest: dict[str, str] = {}
        self.subscribers: set[Subscriber] = set()
        self.passes = 0  # engine observations so far (tests read it)
        self._rows: dict[str, ServiceView] = {}
        self._inflight: set[str] = set()
        self._status_error: str | None = None
        self._run: CheckRun | None = None
        self._runs = 0
        self._checks_running = False
        self._action = ActionView()
        self._busy = False
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.publish("meta", page.render_meta("not yet polled", None, redact=self.redact))
        self.publish("action", page.render_action(self._action, redact=self.redact))
        self._publish_services()
        self.publish("watch", "")
        self._publish_checks()

    # --- the stream --------------------------------------------------------------------

    def redact(self, text: str) -> str:
        return self.engine.redact(text)

    def publish(self, name: str, text: str) -> None:
        text = self.engine.redact(text)  # once more, the whole fragment: nothing gets past
        if self.latest.get(name) == text:
            return
        self.latest[name] = text
        for sub in self.subscribers:
            sub.offer(name, text)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        sub = Subscriber()
        for name, text in self.latest.items():
            sub.offer(name, text)
        self.subscribers.add(sub)
        self._wake.set()
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("devenv ui: a bug stopped a task", exc_info=exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- status ------------------------------------------------------------------------

    async def poll_forever(self) -> None:
        while True:
            if not self.subscribers:
                self._wake.clear()
                await self._wake.wait()
                continue
            started = time.monotonic()
            await self.poll_once()
            remaining = self.interval - (time.monotonic() - started)
            self._wake.clear()
            if remaining > 0:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._wake.wait()

    async def poll_once(self) -> None:
        started = time.perf_counter()
        try:
            observation = await in_thread(self.engine.observe)
        except DevenvError as exc:
            self._status_error = exc.one_line()
            self._publish_services()
            self.publish(
                "meta",
                page.render_meta(_clock_time(), None, self._status_error, redact=self.redact),
            )
            return
        self.passes += 1
        self._status_error = None
        for service in self.engine.services:
            if service not in self._inflight:
                self._inflight.add(service)
                self._spawn(self._probe(observation, service))
        pass_ms = (time.perf_counter() - started) * 1000
        self.publish("meta", page.render_meta(_clock_time(), pass_ms, redact=self.redact))
        self._spawn(self._watch())

    async def _probe(self, observation: Any, service: str) -> None:
        row = self._unknown(service, INTERNAL)  # unless the probe returns or explains
        try:
            row = await in_thread(self.engine.probe, observation, service)
        except DevenvError as exc:  # e.g. the engine failed reading a dead container's logs
            row = self._unknown(service, exc.one_line())
        finally:
            self._inflight.discard(service)
            self._rows[service] = row
            self._publish_services()

    def _unknown(self, service: str, detail: str) -> ServiceView:
        old = self._rows.get(service)
        return ServiceView(
            name=service,
            provider=old.provider if old else "",
            state="unknown",
            healthy=False,
            detail=detail,
            latency_ms=None,
            image=old.image if old else "",
            url=old.url if old else "",
        )

    def _publish_services(self) -> None:
        rows = [self._rows[s] for s in self.engine.services if s in self._rows]
        self.publish("services", page.render_services(rows, self._status_error, redact=self.redact))

    async def _watch(self) -> None:
        text = await in_thread(self.engine.watch_text)
        now = datetime.now(UTC)
        view = watch_view(text, now=now, alive=self.alive)
        self.publish("watch", page.render_watch(view, now=now, redact=self.redact))

    # --- checks ------------------------------------------------------------------------

    def _publish_checks(self) -> None:
        running = self._checks_running
        self.publish("checks", page.render_checks(self._run, running=running, redact=self.redact))
        self.publish("phases", page.render_phases(self._run, redact=self.redact))

    async def _checks(self) -> str:
        self._checks_running = True
        self._publish_checks()
        self._runs += 1
        started = time.monotonic()
        try:
            checked: Checked = await in_thread(self.engine.run_checks)
        except DevenvError as exc:
            self._ended(started, error=exc.one_line())
            raise
        except BaseException:  # a bug, or the server stopping: said, and re-raised
            self._ended(started, error=INTERNAL)
            raise
        self._ended(started, checked)
        return f"run #{self._runs}: {summary(checked.checks)}"

    def _ended(self, started: float, checked: Checked | None = None, error: str = "") -> None:
        seconds = time.monotonic() - started
        if checked is None:
            self._run = CheckRun(self._runs, _clock_time(), seconds, error=error)
        else:
            self._run = CheckRun(
                number=self._runs,
                finished=_clock_time(),
                seconds=seconds,
                checks=tuple(check_view(c) for c in checked.checks),
                summary=summary(checked.checks),
                evaluation=checked.evaluation,
                profile=checked.profile,
            )
        self._checks_running = False
        self._publish_checks()

    # --- actions -----------------------------------------------------------------------

    @property
    def busy(self) -> str | None:
        return self._action.name if self._busy else None

    def start(self, name: str) -> bool:
        """Start an action ("checks", "up" or "restart SERVICE"); False while one runs."""
        if self._busy:
            return False
        if name == "checks":
            work: Callable[[], Awaitable[str]] = self._checks
        elif name == "up":

            async def work() -> str:
                return str(await in_thread(self.engine.up, self._progress_from_thread()))

        elif name.startswith("restart "):
            service = name.removeprefix("restart ")

            async def work() -> str:
                progress = self._progress_from_thread()
                return str(await in_thread(self.engine.restart, service, progress))

        else:
            raise ValueError(f"unknown action {name!r}")
        self._busy = True
        self._action = ActionView(name=name, running=True, started=_clock_time())
        self.publish("action", page.render_action(self._action, redact=self.redact))
        self._spawn(self._act(name, work))
        return True

    def _progress_from_thread(self) -> Callable[[str], None]:
        loop = asyncio.get_running_loop()

        def progress(line: str) -> None:
            loop.call_soon_threadsafe(self._progress, line)

        return progress

    def _progress(self, line: str) -> None:
        lines = (*self._action.lines, line)[-MAX_PROGRESS_LINES:]
        self._action = ActionView(
            name=self._action.name, running=True, started=self._action.started, lines=lines
        )
        self.publish("action", page.render_action(self._action, redact=self.redact))

    async def _act(self, name: str, work: Callable[[], Awaitable[str]]) -> None:
        started = time.monotonic()
        message, ok = INTERNAL, False  # unless the work returns or explains
        try:
            message, ok = await work(), True
        except DevenvError as exc:
            message = exc.one_line()
        finally:
            self._action = ActionView(
                name=name,
                running=False,
                ok=ok,
                message=message,
                lines=self._action.lines,
                started=self._action.started,
                seconds=time.monotonic() - started,
            )
            self._busy = False
            self.publish("action", page.render_action(self._action, redact=self.redact))
            self._wake.set()  # show what the action changed without waiting for the next tick
