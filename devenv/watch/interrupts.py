"""Where a SIGINT or SIGTERM may land in a watch cycle: blocks it waits for, and a test hook.

The CLI's handler raises Interrupted in the main thread wherever it is; an Interrupted is no
DevenvError, so no cycle's `except` takes it for a failure of the change. `held` is for the few
blocks that must not stop half-way (the copy, restart and record of a new binary). `Pause` lets
a test stop a cycle at a named point and interrupt it exactly there.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from devenv.errors import ConfigError

if TYPE_CHECKING:
    import httpx

SIGNALS = (signal.SIGINT, signal.SIGTERM)
PAUSE_ENV = "DEVENV_TEST_WATCH_PAUSE"
# the points of a cycle, in order: cargo runs (the migrations gate too), the build is done and
# about to be served, the binary is in the container (restart and record to come), /health is
# awaited, a route check's request is on its way, the cycle is being reported
POINTS = ("build", "serve", "copy", "health", "checks", "report")
PAUSE_LIMIT = 60.0  # a paused cycle goes on after this long without a signal

Handler = Callable[[int, Any], Any] | int | None


@contextlib.contextmanager
def held() -> Iterator[threading.Event]:
    """Hold a SIGINT or SIGTERM until the block is done, then let the handler that was there
    act on it (the CLI's raises Interrupted). The event is set once a signal waits. Outside the
    main thread, where no signal handler runs, nothing needs holding."""
    waiting = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield waiting
        return
    caught: list[int] = []

    def hold(number: int, _frame: object) -> None:
        caught.append(number)
        waiting.set()

    previous = {sig: signal.signal(sig, hold) for sig in SIGNALS}
    try:
        yield waiting
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for number in caught[:1]:  # one interrupt is enough; a second press changes nothing
            _deliver(number, previous[signal.Signals(number)])


def _deliver(number: int, handler: Handler, frame: Any = None) -> None:
    if callable(handler):
        handler(number, frame)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signal.Signals(number))


class Pause:
    """The test hook: with DEVENV_TEST_WATCH_PAUSE=<point> the first cycle that reaches that
    point says so on stderr ("[watch] paused at copy ...") and waits there, at most a minute,
    for a SIGINT or SIGTERM; the signal then acts as it would have at that point. Unset, it
    does nothing."""

    def __init__(self, point: str | None, progress: Callable[[str], None]) -> None:
        if point is not None and point not in POINTS:
            raise ConfigError(
                f"unknown point {point!r}",
                key=PAUSE_ENV,
                hint=f"one of {', '.join(POINTS)} (a test hook), or unset it",
            )
        self.point = point
        self.progress = progress
        self.signalled = threading.Event()
        self._paused = False

    def install(self) -> None:
        """Note every SIGINT and SIGTERM before the handler in place acts on it (main thread,
        before watching): a pause outside the main thread waits for that."""
        if self.point is None or threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:
            signal.signal(sig, self._noting(signal.getsignal(sig)))

    def _noting(self, previous: Handler) -> Callable[[int, Any], None]:
        def noted(number: int, frame: Any) -> None:
            self.signalled.set()
            _deliver(number, previous, frame)

        return noted

    def __call__(self, point: str, waiting: threading.Event | None = None) -> None:
        """At `point` of a cycle: pause when asked to (once), until a signal comes; `waiting`
        is the `held` block's event when the signal is held there."""
        if point != self.point or self._paused:
            return
        self._paused = True
        self.progress(f"[watch] paused at {point} ({PAUSE_ENV}): waiting for a signal")
        (waiting or self.signalled).wait(PAUSE_LIMIT)

    def transport(self) -> httpx.BaseTransport | None:
        """The route checks' transport when they pause: the first request waits in its check's
        thread, the others run on. None otherwise (the checks make their own)."""
        if self.point != "checks":
            return None
        import httpx

        pause = self

        class Paused(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                pause("checks")
                return super().handle_request(request)

        return Paused(trust_env=False)
