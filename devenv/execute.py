"""Execute a plan: run each step's handler once the steps it waits for are done, and record.

The executor decides nothing: the plan says what and in which order, the handlers say how.
Independent steps run in parallel. A step whose prerequisite failed (or was skipped) is
skipped, naming it. On SIGINT (the main thread's Interrupted) every wait is told to stop at
once, the running handlers are joined, and the interruption goes on.
"""

from __future__ import annotations

import graphlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from devenv.errors import DevenvError
from devenv.plan import Step, StepKind

Status = Literal["done", "failed", "skipped"]
Handler = Callable[[Step], str]


@dataclass(frozen=True)
class Outcome:
    step: Step
    status: Status
    detail: str = ""
    seconds: float = 0.0
    error: DevenvError | None = None


class Executor:
    def __init__(
        self,
        steps: Sequence[Step],
        handlers: Mapping[StepKind, Handler],
        *,
        cancel: threading.Event | None = None,
        workers: int = 8,
    ) -> None:
        self.steps = list(steps)
        self.handlers = handlers
        self.cancel = cancel or threading.Event()
        self.workers = workers

    def run(self) -> list[Outcome]:
        by_id = {s.id: s for s in self.steps}
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
            {s.id: s.after for s in self.steps}
        )
        sorter.prepare()
        outcomes: dict[str, Outcome] = {}
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            running: dict[Future[Outcome], Step] = {}
            try:
                while sorter.is_active():
                    for step_id in sorter.get_ready():
                        step = by_id[step_id]
                        blocked = next(
                            (a for a in step.after if outcomes[a].status != "done"), None
                        )
                        if blocked is not None:
                            why = f"not run: {blocked.replace(':', ' ', 1)} did not complete"
                            outcomes[step_id] = Outcome(step, "skipped", why)
                            sorter.done(step_id)
                        else:
                            running[pool.submit(self._run, step)] = step
                    if not running:
                        continue
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        step = running.pop(future)
                        outcomes[step.id] = future.result()
                        sorter.done(step.id)
            except BaseException:
                # Interrupted (SIGINT in the main thread): every wait leaves now; the pool
                # then joins the handlers still running.
                self.cancel.set()
                raise
        return [outcomes[s.id] for s in self.steps]

    def _run(self, step: Step) -> Outcome:
        started = time.monotonic()
        try:
            detail = self.handlers[step.kind](step)
        except DevenvError as exc:
            return Outcome(step, "failed", exc.message, time.monotonic() - started, exc)
        return Outcome(step, "done", detail, time.monotonic() - started)


def failures(outcomes: Sequence[Outcome]) -> list[DevenvError]:
    """The failed steps' errors, the one to report first.

    A local failure wins over an external provider's: it is the one the user can fix now,
    and an external outage must not hide it. Among equals, plan order wins (dependencies
    first). Skipped steps are consequences, never causes.
    """
    failed = [o for o in outcomes if o.status == "failed" and o.error is not None]
    local = [o for o in failed if o.step.kind != "verify-external"]
    external = [o for o in failed if o.step.kind == "verify-external"]
    return [o.error for o in (*local, *external) if o.error is not None]
