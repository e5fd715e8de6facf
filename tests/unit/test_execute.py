"""The executor and the use cases, driven through the fake engine and fake services."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv import app
from devenv.errors import (
    EngineError,
    Interrupted,
    ProviderError,
    ReadinessError,
    RefusedError,
)
from devenv.execute import Executor, Outcome, failures
from devenv.plan import CHANGES, Step
from tests.unit.stacks import fakes, make_root, options

HYBRID_URL = "postgres://app:Secret-Pw-1@127.0.0.1:1/app"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Machine-wide claims go to a directory of this test."""
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


def _files(root: Path) -> dict[str, bytes]:
    found = {}
    for base in (root, root.parent / "cache"):
        if base.exists():
            for path in sorted(base.rglob("*")):
                if (path.is_file() and ".devenv" in path.parts) or path.parent.name == "cache":
                    found[str(path)] = path.read_bytes()
    return found


# --- the executor alone --------------------------------------------------------------------


def test_steps_run_after_what_they_wait_for_and_in_parallel_otherwise() -> None:
    started: dict[str, float] = {}
    gate = threading.Event()

    def handler(step: Step) -> str:
        started[step.id] = time.monotonic()
        if step.target == "slow":
            gate.wait(2)
        if step.target == "fast":
            gate.set()  # runs while `slow` waits: they are independent
        return "ok"

    steps = [
        Step("wait-ready", "slow", "c"),
        Step("wait-ready", "fast", "c"),
        Step("start", "after", "c", ("wait-ready:slow", "wait-ready:fast")),
    ]
    outcomes = Executor(steps, {"wait-ready": handler, "start": handler}).run()
    assert [o.status for o in outcomes] == ["done", "done", "done"]
    assert started["start:after"] >= max(started["wait-ready:slow"], started["wait-ready:fast"])
    assert gate.is_set()


def test_a_failed_step_skips_its_dependents_and_names_the_cause() -> None:
    def fail(step: Step) -> str:
        raise ReadinessError(f"{step.target} never answered")

    steps = [
        Step("wait-ready", "db", "c"),
        Step("start", "api", "c", ("wait-ready:db",)),
        Step("wait-ready", "api", "c", ("start:api",)),
        Step("keep", "store", "c"),
    ]
    outcomes = Executor(steps, {"wait-ready": fail, "start": fail, "keep": lambda s: "kept"}).run()
    assert [(o.step.id, o.status) for o in outcomes] == [
        ("wait-ready:db", "failed"),
        ("start:api", "skipped"),
        ("wait-ready:api", "skipped"),
        ("keep:store", "done"),
    ]
    assert outcomes[1].detail == "not run: wait-ready db did not complete"


def test_a_local_failure_wins_over_an_external_one() -> None:
    local = ReadinessError("objectstore never answered")
    external = ProviderError("postgres refused")
    outcomes = [
        Outcome(Step("verify-external", "postgres", "c"), "failed", "", 0, external),
        Outcome(Step("start", "backend", "c"), "skipped"),
        Outcome(Step("wait-ready", "objectstore", "c"), "failed", "", 0, local),
    ]
    assert failures(outcomes) == [local, external]
    assert failures(outcomes[:2]) == [external]
    assert failures([]) == []


# --- up through the fakes ------------------------------------------------------------------


def test_dry_run_changes_no_file_and_no_engine_object(root: Path) -> None:
    f = fakes(options(root))
    before = _files(root)
    planned = app.plan_up(options(root), adapters=f.adapters)
    assert not planned.plan.noop
    assert _files(root) == before
    assert not (root / ".devenv").exists()
    assert not (root.parent / "cache").exists()
    assert f.runtime.containers == {}
    assert f.runtime.volumes == {}
    assert f.clients.writes == []
    assert [line for line in f.journal if not line.startswith(("probe", "head", "read"))] == []


def test_up_starts_dependents_after_their_dependencies_answer(root: Path) -> None:
    f = fakes(options(root), {"postgres": 3, "objectstore": 2})
    result = app.up(options(root), adapters=f.adapters, timeout=10)
    assert [s.action for s in result.services] == ["created", "created", "created"]
    assert all(s.ready for s in result.services)
    journal = f.journal
    last_pg = max(i for i, line in enumerate(journal) if line == "probe postgres")
    last_store = max(i for i, line in enumerate(journal) if line == "probe objectstore")
    assert f.index("start backend") > max(last_pg, last_store)
    assert f.index("create bucket") < last_store  # the round trip needs the bucket
    assert f.index("read migrations") < f.index("create backend")
    assert f.clients.seeded == 1
    state = (root / ".devenv" / "t" / "state.json").stat()
    assert state.st_mode & 0o777 == 0o600
    again = app.up(options(root), adapters=f.adapters, timeout=10)
    assert again.noop, again.plan.text()
    assert f.clients.seeded == 1


def test_sigint_stops_every_wait_at_once(root: Path) -> None:
    f = fakes(options(root), {"backend": "never"})
    cancel = threading.Event()

    def interrupt(_signum: int, _frame: object) -> None:
        raise Interrupted("stopped by SIGINT")

    previous = signal.signal(signal.SIGINT, interrupt)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(Interrupted):
            app.up(options(root), adapters=f.adapters, timeout=60, cancel=cancel)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 5  # not the 60 s deadline
    assert cancel.is_set()
    probes = f.journal.count("probe backend")
    time.sleep(0.3)  # after the interruption, nothing probes any more
    assert f.journal.count("probe backend") == probes


def test_failing_external_stops_its_dependents_and_is_verified_first(root: Path) -> None:
    opts = options(root, DEVENV_PROFILE="hybrid", DEVENV_HYBRID_DATABASE_URL=HYBRID_URL)
    f = fakes(opts, {"postgres": "refused"})
    with pytest.raises(ProviderError, match=r"external provider .* is not ready"):
        app.up(opts, adapters=f.adapters, timeout=10)
    assert f.journal[0] == "probe postgres" or f.index("probe postgres") < f.index(
        "create objectstore"
    )
    assert "create backend" not in f.journal
    assert "start backend" not in f.journal
    assert "start objectstore" in f.journal  # independent of the external: it went on


def test_a_local_failure_is_reported_before_the_external_one(root: Path) -> None:
    opts = options(root, DEVENV_PROFILE="hybrid", DEVENV_HYBRID_DATABASE_URL=HYBRID_URL)
    f = fakes(opts, {"postgres": "refused", "objectstore": "never"})
    f.runtime.exits["objectstore"] = 1
    f.runtime.exit_logs = "FATAL: cannot open /data\n"
    said: list[str] = []
    with pytest.raises(ReadinessError, match="service objectstore: container exited") as caught:
        app.up(opts, adapters=f.adapters, timeout=10, progress=said.append)
    assert "FATAL: cannot open /data" in caught.value.details
    assert any(line.startswith("also: Provider error: service postgres") for line in said)


def test_a_refused_plan_changes_nothing(root: Path) -> None:
    from devenv.migrations import AppliedMigration

    f = fakes(options(root))
    app.up(options(root), adapters=f.adapters, timeout=10)
    f.clients.applied = (AppliedMigration(99, "theirs", True, b""),)
    f.journal.clear()
    text = (root / "compose" / "compose.yaml").read_text()
    (root / "compose" / "compose.yaml").write_text(text.replace("RUST_LOG: info", "RUST_LOG: x"))
    with pytest.raises(RefusedError, match="not in the source: 99"):
        app.up(options(root), adapters=f.adapters, timeout=10)
    assert [line for line in f.journal if not line.startswith(("probe", "head", "read"))] == []


def test_restart_restarts_one_service_and_waits(root: Path) -> None:
    f = fakes(options(root))
    app.up(options(root), adapters=f.adapters, timeout=10)
    f.journal.clear()
    result = app.restart(options(root), "objectstore", adapters=f.adapters, timeout=10)
    assert f.journal[:2] == ["stop objectstore", "start objectstore"]
    assert "probe objectstore" in f.journal
    assert [(s.service, s.action, s.ready) for s in result.services] == [
        ("objectstore", "restarted", True)
    ]


def test_status_reads_and_reports_a_dead_service(root: Path) -> None:
    f = fakes(options(root))
    app.up(options(root), adapters=f.adapters, timeout=10)
    backend = next(c for c in f.runtime.containers.values() if c.spec.service == "backend")
    backend.state, backend.exit_code = "exited", 101
    backend.logs = "thread 'main' panicked at src/main.rs:3:5:\nboom\n"
    result = app.status(options(root), adapters=f.adapters)
    by_name = {s.name: s for s in result.services}
    assert by_name["postgres"].healthy
    assert not by_name["backend"].healthy
    assert by_name["backend"].detail == (
        "backend exited with code 101: panicked at src/main.rs:3:5: boom"
    )
    assert [s.name for s in result.unhealthy] == ["backend"]
    assert "****" in by_name["postgres"].url


def test_each_service_status_is_read_on_its_own_and_timed(root: Path) -> None:
    f = fakes(options(root))
    app.up(options(root), adapters=f.adapters, timeout=10)
    backend = next(c for c in f.runtime.containers.values() if c.spec.service == "backend")
    backend.state, backend.exit_code = "exited", 101
    scan = app.status_scan(options(root), adapters=f.adapters)
    f.journal.clear()
    postgres = app.service_status(scan, "postgres")
    # the other services were not asked; status asks for a probe that changes nothing
    assert f.journal == ["probe postgres (read-only)"]
    assert postgres.healthy
    assert postgres.latency_ms is not None
    assert postgres.latency_ms >= 0
    dead = app.service_status(scan, "backend")
    assert (dead.healthy, dead.latency_ms) == (False, None)  # no probe of a dead container
    everything = app.status(options(root), adapters=f.adapters).services
    assert dead == next(s for s in everything if s.name == "backend")  # the same status


def test_down_volumes_with_a_volume_in_use_is_an_engine_error(root: Path) -> None:
    f = fakes(options(root))
    app.up(options(root), adapters=f.adapters, timeout=10)
    from devenv.runtime.base import ContainerSpec

    squatter = ContainerSpec("other", "x", "other-x", "img", (), None, (), (("t_pgdata", "/d"),),
                             None, None)  # fmt: skip
    f.runtime.create(squatter)
    with pytest.raises(EngineError, match="volume t_pgdata is in use"):
        app.down(options(root), volumes=True, adapters=f.adapters)


def test_up_takes_the_golden_snapshot_once_the_stack_is_healthy_and_seeded(root: Path) -> None:
    f = fakes(options(root))
    dry = app.plan_up(options(root), adapters=f.adapters).plan
    assert "snapshot-golden   golden" in dry.text()  # --dry-run shows it, takes nothing
    assert f.clients.golden_taken == 0
    said: list[str] = []
    app.up(options(root), adapters=f.adapters, timeout=10, progress=said.append)
    assert f.clients.golden_taken == 1
    taken = f.index("snapshot golden")
    assert taken > f.index("seed user")
    assert taken > max(i for i, line in enumerate(f.journal) if line == "probe backend")
    assert any("`devenv reset` comes back to this state" in line for line in said)
    again = app.up(options(root), adapters=f.adapters, timeout=10)
    assert again.noop, again.plan.text()
    assert f.clients.golden_taken == 1


def test_a_golden_snapshot_that_cannot_be_taken_warns_and_up_succeeds(root: Path) -> None:
    f = fakes(options(root))
    f.clients.golden_error = "postgres: copying database ignition failed: disk full"
    said: list[str] = []
    result = app.up(options(root), adapters=f.adapters, timeout=10, progress=said.append)
    assert all(s.ready for s in result.services)
    assert any(line.startswith("warning: golden snapshot not taken: postgres") for line in said)
    f.clients.golden_error = ""
    again = app.up(options(root), adapters=f.adapters, timeout=10)
    assert [s.kind for s in again.plan.steps if s.kind in CHANGES] == ["snapshot-golden"]
    assert f.clients.golden_taken == 1


def test_down_volumes_deletes_the_project_s_snapshots_and_only_with_volumes(
    root: Path, tmp_path: Path
) -> None:
    from devenv.snapshot.store import Store

    f = fakes(options(root))
    app.up(options(root), adapters=f.adapters, timeout=10)
    mine, theirs = Store("t"), Store("other")
    for store in (mine, theirs):
        store.add_object(b"bytes")
        store.manifests_dir.mkdir(parents=True)
        (store.manifests_dir / "golden.json").write_text("{}")
    assert mine.root.is_relative_to(tmp_path / "cache")
    kept = app.down(options(root), volumes=False, adapters=f.adapters)
    assert kept.snapshots_removed == []
    assert mine.root.exists()
    app.up(options(root), adapters=f.adapters, timeout=10)
    gone = app.down(options(root), volumes=True, adapters=f.adapters)
    assert gone.snapshots_removed == ["golden"]
    assert not mine.root.exists()
    assert theirs.names() == ["golden"]  # another project's store is not touched


@pytest.fixture
def _no_threads_left() -> Iterator[None]:
    yield
    assert threading.active_count() < 10
