"""`devenv watch` without an engine: which saves count, debouncing, the cycle's line and JSON,
the refusals, the cancellable build, one served cycle on the fake engine, and a Ctrl-C at
each point of a cycle."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devenv.checks.contract import contract_file
from devenv.checks.scaffold import first_error
from devenv.checks.spec import load_contract
from devenv.config.load import Config, load_config
from devenv.config.secrets import Secrets
from devenv.errors import ConfigError, Interrupted, RefusedError
from devenv.images.build import built_binary, cargo_command
from devenv.images.identity import BASE_TAG
from devenv.migrations import AppliedMigration
from devenv.model import BackendBuild, CheckResult
from devenv.observe import current
from devenv.plan import reconcile
from devenv.runtime.base import LABEL_GLIBC
from devenv.runtime.fake import FakeClients, FakeRuntime
from devenv.state import read_serving, state_dir
from devenv.watch.cargo import BuildResult, CargoBuild
from devenv.watch.cycle import Checks, Cycle, cycle_data, line, watch_file_data
from devenv.watch.loop import Watcher, _Running
from devenv.watch.paths import Debouncer, WatchSet, editor_temp, refusal, watch_profile
from tests.unit.stacks import make_root, observation, options

ROOT = Path("/src/app/backend")
SET = WatchSet((ROOT,), (Path("/shared/migrations"),))


# --- which saves count ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "counts"),
    [
        ("src/routes.rs", True),
        ("src/handlers/mod.rs", True),
        ("crates/api/src/main.rs", True),
        ("crates/api/Cargo.toml", True),
        ("migrations/0003_notes.sql", True),
        ("Cargo.toml", True),
        ("Cargo.lock", True),
        ("build.rs", True),
        ("rust-toolchain.toml", True),
        ("README.md", False),
        ("Dockerfile", False),
        ("src", False),  # the directory itself changing says nothing
        ("target/debug/ignition-api", False),
        ("crates/api/target/release/x", False),
        ("src/target/x.rs", False),
        (".git/index", False),
        ("src/.routes.rs.swp", False),
        ("src/routes.rs~", False),
        ("src/4913", False),
        ("src/.#routes.rs", False),
        ("src/#routes.rs#", False),
        ("src/routes.rs___jb_tmp___", False),
        ("src/sedA1b2C3", False),
        ("src/routes.rs.orig", False),
    ],
)
def test_only_build_inputs_count(path: str, counts: bool) -> None:
    assert SET.relevant(ROOT / path) is counts


def test_an_explicit_migrations_directory_counts_and_is_named_by_its_own_name() -> None:
    assert SET.relevant(PurePath("/shared/migrations/0004_x.sql"))
    assert not SET.relevant(PurePath("/shared/migrations/.0004_x.sql.swp"))
    assert not SET.relevant(PurePath("/elsewhere/src/main.rs"))
    assert SET.shown(PurePath("/shared/migrations/0004_x.sql")) == "migrations/0004_x.sql"
    assert SET.shown(ROOT / "src" / "routes.rs") == "src/routes.rs"


def test_a_package_directory_below_the_workspace_counts_too() -> None:
    package = ROOT / "server"  # the package's own directory, outside the watched trees
    both = WatchSet((ROOT, package))
    assert both.relevant(package / "build.rs")  # a top-level file of the package
    assert not both.relevant(package / "notes.txt")
    assert [str(t) for t in both.trees()][:4] == [
        f"{ROOT}/src",
        f"{ROOT}/crates",
        f"{ROOT}/migrations",
        f"{ROOT}/.cargo",
    ]


segment = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)


@given(st.lists(segment, max_size=3), st.lists(segment, max_size=3))
def test_nothing_under_a_target_directory_ever_counts(before: list[str], after: list[str]) -> None:
    assert not SET.relevant(ROOT.joinpath("src", *before, "target", *after, "x.rs"))


@pytest.mark.parametrize("name", ["main.rs", "Cargo.toml", "0001_schema.sql", "mod.rs", "lib.rs"])
def test_source_names_are_not_editor_temporaries(name: str) -> None:
    assert not editor_temp(name)


# --- debouncing -----------------------------------------------------------------------------


def test_a_batch_is_due_after_a_quiet_spell() -> None:
    d = Debouncer(quiet=0.05, longest=1.0)
    assert d.due(0.0) is None
    d.add(["b.rs"], 10.0)
    assert d.due(10.01) == pytest.approx(0.04)
    d.add(["a.rs", "b.rs"], 10.03)  # a second save restarts the quiet spell
    assert d.due(10.05) == pytest.approx(0.03)
    assert d.due(10.08) == 0
    assert d.take() == ("a.rs", "b.rs")
    assert not d.pending
    assert d.due(11.0) is None


def test_saves_that_never_stop_are_built_after_the_longest_wait() -> None:
    d = Debouncer(quiet=0.05, longest=0.2)
    for i in range(10):
        d.add([f"{i}.rs"], 5.0 + i * 0.04)
    assert d.due(5.2) == 0
    assert len(d.take()) == 10


def test_an_empty_batch_is_no_batch() -> None:
    d = Debouncer(quiet=0.05, longest=1.0)
    d.add([], 1.0)
    assert d.due(2.0) is None


# --- the cycle's line, JSON and hand-off ----------------------------------------------------

ENDED = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def cycle(**fields: object) -> Cycle:
    base: dict[str, object] = {
        "changed": ("backend/src/routes.rs",),
        "shown": ("src/routes.rs",),
        "outcome": "served",
        "ended": ENDED,
        "build_seconds": 1.1,
        "restart_seconds": 0.3,
        "checks": Checks(passed=19, total=19),
    }
    return Cycle(**{**base, **fields})  # type: ignore[arg-type]


def test_the_served_line() -> None:
    assert line(cycle()) == "[watch] src/routes.rs → built 1.1 s, restarted 0.3 s, 19/19 checks ✓"


def test_failed_checks_are_named_and_advisory_ones_apart() -> None:
    checks = Checks(passed=17, total=19, failed=("route.root", "csrf.blocks"), advisory=("x",))
    assert line(cycle(checks=checks)) == (
        "[watch] src/routes.rs → built 1.1 s, restarted 0.3 s, 17/19 checks ✗ failed: "
        "route.root, csrf.blocks (advisory failed: x)"
    )
    assert not cycle(checks=checks).ok
    assert cycle(checks=Checks(passed=18, total=19, advisory=("x",))).ok


def test_applied_migrations_and_cancelled_builds_are_said() -> None:
    shown = ("migrations/3_notes.sql", "src/a.rs", "src/b.rs", "src/c.rs")
    text = line(cycle(shown=shown, applied=("3 notes",), cancelled=2))
    assert text == (
        "[watch] migrations/3_notes.sql, src/a.rs, src/b.rs (+1 more) → built 1.1 s (after 2 "
        "builds cancelled by a newer save), restarted 0.3 s, applied 3 notes, 19/19 checks ✓"
    )


def test_the_lines_of_a_cycle_that_did_not_serve() -> None:
    first = "error[E0425]: cannot find value `x` in this scope at src/routes.rs:3:5"
    failed = cycle(outcome="build-failed", checks=None, build_seconds=0.94, error=first)
    assert line(failed) == (
        "[watch] src/routes.rs → build failed in 0.9 s: error[E0425]: cannot find value `x` in "
        "this scope at src/routes.rs:3:5; the previous build keeps serving"
    )
    refused = cycle(outcome="refused", checks=None, error="backend source /b does not match")
    assert line(refused) == (
        "[watch] src/routes.rs → refused: backend source /b does not match; the previous "
        "build keeps serving"
    )
    crashed = cycle(outcome="crashed", checks=None, error="backend exited with code 101: boom")
    assert line(crashed) == (
        "[watch] src/routes.rs → built 1.1 s, backend crashed: backend exited with code 101: "
        "boom; the next good save brings it back"
    )
    same = cycle(outcome="unchanged", checks=None)
    assert line(same) == "[watch] src/routes.rs → built 1.1 s, same binary: nothing to restart"
    for c in (failed, refused, crashed):
        assert not c.ok


def test_the_json_object_of_a_cycle() -> None:
    data = cycle_data(cycle(checks=Checks(18, 19, failed=("route.root",)), applied=("3 n",)))
    assert data == {
        "schema_version": 1,
        "time": "2026-11-29T12:00:00.000+00:00",
        "changed": ["backend/src/routes.rs"],
        "outcome": "served",
        "ok": False,
        "build_seconds": 1.1,
        "restart_seconds": 0.3,
        "checks": {"passed": 18, "failed": 1, "total": 19},
        "failed_checks": ["route.root"],
        "advisory_failed": [],
        "applied": ["3 n"],
        "cancelled": 0,
        "error": None,
        "details": [],
    }
    json.dumps(data)  # one line of JSON


def test_watch_json_has_exactly_the_dashboard_s_fields() -> None:
    local = cycle(ended=datetime(2026, 11, 29, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    data = watch_file_data(local, 4242)
    assert data == {
        "schema_version": 1,
        "pid": 4242,
        "time": "2026-11-29T13:00:00.000+01:00",
        "changed": ["backend/src/routes.rs"],
        "build_seconds": 1.1,
        "restart_seconds": 0.3,
        "checks": {"passed": 19, "failed": 0},
        "ok": True,
        "error": None,
    }
    assert datetime.fromisoformat(data["time"]).utcoffset() == timedelta(hours=1)
    failed = watch_file_data(cycle(outcome="build-failed", checks=None, error="error: x"), 1)
    assert failed["ok"] is False
    assert failed["error"] == "error: x"
    assert failed["checks"] == {"passed": 0, "failed": 0}


def test_checks_counted_from_results() -> None:
    results = [
        CheckResult("a", "a", True, ""),
        CheckResult("b", "b", False, "", level="advisory"),
        CheckResult("c", "c", False, ""),
        CheckResult("d", "d", True, "", skipped=True),
    ]
    assert Checks.of(results) == Checks(passed=1, total=3, failed=("c",), advisory=("b",))


# --- refusals and the profile key -----------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "project")


def _config(root: Path, **environ: str) -> Config:
    return load_config(options(root, **environ))


def test_an_external_backend_or_an_image_is_refused_with_one_line(root: Path) -> None:
    external = _config(root, DEVENV_BACKEND_PROVIDER="external",
                       DEVENV_BACKEND_URL="https://api.example")  # fmt: skip
    refused = refusal(external)
    assert isinstance(refused, ConfigError)
    assert refused.exit_code == 3
    assert "services.backend.provider: profile local binds the backend to an external" in (
        refused.message
    )
    image = _config(root, DEVENV_BACKEND_IMAGE="ignition-api:prod")
    refused = refusal(image)
    assert refused is not None
    assert "runs the backend from image ignition-api:prod" in refused.message
    assert "\n" not in refused.one_line()
    assert refusal(_config(root)) is None


def test_the_watch_profile_defaults_to_fast_and_is_validated(root: Path) -> None:
    assert watch_profile(_config(root)) == "fast"
    dev = _config(root, DEVENV_BACKEND_WATCH_PROFILE="dev")
    assert watch_profile(dev) == "dev"
    with pytest.raises(
        ConfigError, match="unknown cargo profile 'debug'; allowed: fast, release, dev"
    ):
        _config(root, DEVENV_BACKEND_WATCH_PROFILE="debug")
    with pytest.raises(ConfigError, match="not with `image`"):
        _config(root, DEVENV_BACKEND_IMAGE="x:1", DEVENV_BACKEND_WATCH_PROFILE="dev")


def test_cargo_commands_share_the_image_build_s_flags() -> None:
    build = BackendBuild(Path("/src/app"), package="api", binary="server")
    image = cargo_command(build, locked=True)
    assert image == ["cargo", "build", "--release", "--locked", "-p", "api", "--bin", "server"]
    fast = cargo_command(build, locked=True, profile="fast", unoptimized=["core", "api"])
    assert fast == [
        "cargo", "build", "--release", "--locked",
        "--config", "profile.release.package.api.opt-level=0",
        "--config", "profile.release.package.core.opt-level=0",
        "-p", "api", "--bin", "server",
    ]  # fmt: skip
    assert cargo_command(build, locked=False, profile="dev") == [
        "cargo", "build", "-p", "api", "--bin", "server"
    ]  # fmt: skip
    target = Path("/t")
    assert built_binary(target, build, "fast") == target / "release" / "server"
    assert built_binary(target, build, "dev") == target / "debug" / "server"


# --- the first error of a failed build ------------------------------------------------------


def test_the_first_compiler_error_with_its_place_and_excerpt() -> None:
    rendered = (
        "error[E0425]: cannot find value `nope` in this scope\n"
        '  --> src/routes.rs:20:25\n   |\n20 |     "Ignition API" + nope\n'
        "   |                      ^^^^ not found in this scope\n\n"
    )
    message = {
        "level": "error",
        "message": "cannot find value `nope` in this scope",
        "code": {"code": "E0425"},
        "spans": [{"file_name": "src/routes.rs", "line_start": 20, "column_start": 25}],
        "rendered": rendered,
    }
    out = json.dumps({"reason": "compiler-message", "message": message})
    first, excerpt = first_error(out + "\n", "error: could not compile `api`\n")
    assert first == "error[E0425]: cannot find value `nope` in this scope at src/routes.rs:20:25"
    assert excerpt == (
        "  --> src/routes.rs:20:25",
        "   |",
        '20 |     "Ignition API" + nope',
        "   |                      ^^^^ not found in this scope",
    )


def test_without_a_compiler_message_cargo_s_own_error_line() -> None:
    stderr = "   Updating index\nerror: failed to parse manifest at `/a/Cargo.toml`\n\nCaused by:\n"
    assert first_error("", stderr) == (
        "error: failed to parse manifest at `/a/Cargo.toml`",
        ("Caused by:",),
    )


# --- the cancellable build ------------------------------------------------------------------


def _script(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "fake-cargo"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return [str(script)]


def _build(tmp_path: Path, command: list[str]) -> CargoBuild:
    return CargoBuild(
        command,
        cwd=tmp_path,
        env=dict(os.environ),
        lock=tmp_path / "target" / "devenv-build.lock",
        built=tmp_path / "target" / "release" / "server",
        keep=tmp_path / "keep" / "server",
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_cancel_stops_cargo_and_everything_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = _script(tmp_path, f"sleep 60 & echo $! > {pids}\necho $$ >> {pids}\nwait\n")
    build = _build(tmp_path, command).start()
    deadline = time.monotonic() + 10
    while len(pids.read_text().split() if pids.exists() else []) < 2:
        assert time.monotonic() < deadline, "the fake cargo did not start"
        time.sleep(0.01)
    assert build.result() is None
    build.cancel()
    result = build.result(timeout=10)
    assert result is not None
    assert result.cancelled
    assert not result.ok
    for pid in (int(p) for p in pids.read_text().split()):
        deadline = time.monotonic() + 5
        while _alive(pid):
            assert time.monotonic() < deadline, f"process {pid} survived the cancel"
            time.sleep(0.01)


def test_a_build_waits_for_the_target_lock_and_a_cancel_ends_the_wait(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    fd = os.open(tmp_path / "target" / "devenv-build.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        started = tmp_path / "started"
        build = _build(tmp_path, _script(tmp_path, f"touch {started}\n")).start()
        assert build.result(timeout=0.3) is None  # still waiting for the lock
        build.cancel()
        result = build.result(timeout=5)
        assert result is not None
        assert result.cancelled
        assert not started.exists()
    finally:
        os.close(fd)


def test_a_good_build_keeps_its_binary_out_of_cargo_s_reach(tmp_path: Path) -> None:
    out = tmp_path / "target" / "release"
    build = _build(tmp_path, _script(tmp_path, f"mkdir -p {out}\necho v1 > {out}/server\n"))
    result = build.start().result(timeout=10)
    assert result is not None
    assert result.ok
    assert result.binary == tmp_path / "keep" / "server"
    (out / "server").unlink()  # cargo's next build writes a new file
    (out / "server").write_text("v2\n")
    assert result.binary.read_text() == "v1\n"
    assert result.stamp is not None


def test_a_failed_build_reports_its_first_error(tmp_path: Path) -> None:
    body = "echo 'error: no matching package named `ignition-api` found' >&2\nexit 101\n"
    result = _build(tmp_path, _script(tmp_path, body)).start().result(timeout=10)
    assert result is not None
    assert not result.ok
    assert not result.cancelled
    assert result.error == "error: no matching package named `ignition-api` found"


# --- one cycle on the fake engine -----------------------------------------------------------


@pytest.fixture
def watcher(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]]:
    """A watcher of the fake engine's running backend; the route checks are not sent."""
    monkeypatch.setattr(Watcher, "_checks", lambda self: Checks(passed=16, total=16))
    config = _config(root)
    runtime = FakeRuntime()
    runtime.add_image(BASE_TAG, **{LABEL_GLIBC: "9.99"})
    clients = FakeClients(journal=runtime.journal)
    stack = current(config, None)[1]
    plan = reconcile(config, observation(config))
    cid = runtime.create(plan.desired["backend"].spec)
    runtime.start(cid)
    runtime.journal.clear()
    contract = load_contract(contract_file(root, config.profile))
    reported: list[Cycle] = []
    w = Watcher(config, stack, runtime, clients, contract, profile="fast",
                progress=lambda _m: None, report=reported.append,
                secrets=Secrets(),
                timeout=5.0)  # fmt: skip
    return w, runtime, clients, reported


def _served_binary(tmp_path: Path) -> BuildResult:
    binary = tmp_path / "ignition-api"
    binary.write_bytes(Path("/bin/true").read_bytes())  # an ELF that needs an old glibc
    return BuildResult(True, 1.25, binary=binary, stamp=(1, 2))


def test_a_good_build_is_copied_in_restarted_recorded_and_checked(
    watcher: tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]],
    tmp_path: Path,
) -> None:
    w, runtime, _clients, reported = watcher
    source = str(w.paths.roots[0] / "src" / "routes.rs")
    w._finish(_Running((source,), "fe1234567890abcd", 1, None), _served_binary(tmp_path))
    assert runtime.journal[:4] == [
        "put backend /app/ignition-api",
        "stop backend",
        "start backend",
        "probe backend",
    ]
    cid = runtime.observe("t").containers[0].id
    assert runtime.containers[cid].files["/app/ignition-api"] == Path("/bin/true").read_bytes()
    serving = read_serving(w.root, "t")
    assert serving is not None
    assert (serving.container, serving.identity, serving.profile) == (
        cid,
        "fe1234567890abcd",
        "fast",
    )
    (done,) = reported
    assert done.outcome == "served"
    assert done.cancelled == 1
    assert line(done).startswith("[watch] src/routes.rs → built 1.2 s (after 1 build cancelled")
    assert done.changed == ("backend/src/routes.rs",)
    handed = json.loads((state_dir(w.root, "t") / "watch.json").read_text())
    assert handed["ok"] is True
    assert handed["pid"] == os.getpid()
    assert handed["changed"] == ["backend/src/routes.rs"]


def test_a_backend_that_dies_is_reported_with_its_own_error(
    watcher: tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]], tmp_path: Path
) -> None:
    w, runtime, clients, reported = watcher
    runtime.exits["backend"] = 101
    clients.answers["backend"] = "never"
    runtime.exit_logs = (
        "thread 'main' panicked at src/lib.rs:180:5:\nboom from the change\n"
        "password=hunter2-secret\n"
    )
    w.secrets.add("hunter2-secret")
    w._finish(_Running(("/x/src/lib.rs",), "fe1234567890abcd", 0, None), _served_binary(tmp_path))
    (crashed,) = reported
    assert crashed.outcome == "crashed"
    assert crashed.error is not None
    assert crashed.error.startswith("backend exited with code 101: panicked at src/lib.rs:180:5")
    assert any("boom from the change" in d for d in crashed.details)
    assert not crashed.ok
    assert "hunter2-secret" not in (state_dir(w.root, "t") / "watch.json").read_text()


def test_a_changed_applied_migration_is_refused_for_the_cycle(
    watcher: tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]],
) -> None:
    w, _runtime, clients, _reported = watcher
    clients.applied = (AppliedMigration(20260101000001, "users sessions roles", True, b"old"),)
    refused, before = w._gate()
    assert isinstance(refused, RefusedError)
    assert "changed since applied (checksum differs): 20260101000001" in refused.message
    assert before is None


def test_the_loop_ends_on_stop_and_removes_its_hand_off(
    watcher: tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, _runtime, _clients, _reported = watcher
    handed = state_dir(w.root, "t") / "watch.json"
    handed.parent.mkdir(parents=True, exist_ok=True)
    handed.write_text("{}")
    monkeypatch.setattr(Watcher, "_launch", lambda self, running: None)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    w.run(stop)
    assert not handed.exists()


def test_signals_during_the_copy_wait_for_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from devenv.watch.interrupts import held

    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda s, _f: seen.append(s))
    try:
        with held():
            signal.raise_signal(signal.SIGINT)
            assert seen == []  # held
        assert seen == [signal.SIGINT]  # then delivered to the handler that was there
    finally:
        signal.signal(signal.SIGINT, previous)


# --- interrupts -----------------------------------------------------------------------------


@pytest.fixture
def interrupts() -> Iterator[None]:
    """The CLI's handler on SIGINT and SIGTERM (it raises Interrupted), as `devenv watch` has."""
    from devenv.cli.main import _interrupt

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _signal_after(
    monkeypatch: pytest.MonkeyPatch, target: object, name: str, sig: signal.Signals
) -> None:
    """`target.name` does its work, then this process gets `sig`, as a Ctrl-C would land."""
    original = getattr(target, name)

    def then_signal(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        signal.raise_signal(sig)
        return result

    monkeypatch.setattr(target, name, then_signal)


RESTARTED = "the backend restarted on the build of src/routes.rs, not yet checked"


@pytest.mark.parametrize(
    ("where", "sig", "swapped", "said"),
    [
        ("observe", signal.SIGINT, False, "src/routes.rs is built but not served; the backend "
         "was not touched"),
        ("put_file", signal.SIGINT, True, RESTARTED),  # held: the restart and record finish
        ("stop", signal.SIGTERM, True, RESTARTED),
        ("start", signal.SIGINT, True, RESTARTED),
        ("health", signal.SIGINT, True, RESTARTED),
        ("checks", signal.SIGTERM, True, "the backend serves the build of src/routes.rs; its "
         "route checks were cut short"),
        ("report", signal.SIGINT, True, None),  # held: the cycle is reported whole, then it acts
    ],
)  # fmt: skip
def test_an_interrupt_anywhere_in_a_cycle_is_no_failure_and_leaves_record_and_container_agreeing(
    watcher: tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]],
    interrupts: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
    sig: signal.Signals,
    swapped: bool,
    said: str | None,
) -> None:
    w, runtime, _clients, reported = watcher
    lines: list[str] = []
    w.progress = lines.append
    if where == "health":
        _signal_after(monkeypatch, Watcher, "_wait_ready", sig)
    elif where == "checks":
        _signal_after(monkeypatch, Watcher, "_checks", sig)
    elif where == "report":
        _signal_after(monkeypatch, w, "report", sig)
    else:
        _signal_after(monkeypatch, runtime, where, sig)
    source = str(w.paths.roots[0] / "src" / "routes.rs")
    with pytest.raises(Interrupted) as stopped:
        w._finish(_Running((source,), "fe1234567890abcd", 0, None), _served_binary(tmp_path))
    assert stopped.value.message == f"stopped by {sig.name}"

    # never a cycle's failure: a cycle is reported only when it was whole before the signal
    assert [c.outcome for c in reported] == (["served"] if where == "report" else [])
    # the serving record and the container agree: both old, or both the new build
    (cid,) = runtime.containers  # the backend's
    serving = read_serving(w.root, "t")
    if swapped:
        assert serving is not None
        assert (serving.container, serving.identity) == (cid, "fe1234567890abcd")
        assert "/app/ignition-api" in runtime.containers[cid].files
        assert runtime.journal.index("start backend") > runtime.journal.index("stop backend")
        assert runtime.containers[cid].state == "running"
    else:
        assert serving is None
        assert runtime.containers[cid].files == {}
        assert "stop backend" not in runtime.journal
    w._interrupted(stopped.value)  # what `run` says on its way out
    assert lines[-1:] == ([f"[watch] stopped by {sig.name}: {said}"] if said else [])


def test_an_interrupt_during_the_migrations_gate_cancels_the_build_and_ends_watching(
    watcher: tuple[Watcher, FakeRuntime, FakeClients, list[Cycle]],
    interrupts: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Through the whole loop: a save, its build (a fake cargo that would run a minute), and
    Ctrl-C while the database is asked; nothing is reported, the build and everything it
    started are stopped, the hand-off is gone, the backend untouched."""
    w, runtime, clients, reported = watcher
    lines: list[str] = []
    w.progress = lines.append
    pids = tmp_path / "pids"
    command = _script(tmp_path, f"sleep 60 & echo $! >> {pids}\necho $$ >> {pids}\nwait\n")
    jobs: list[CargoBuild] = []

    def launch(self: Watcher, running: _Running | None) -> None:
        self.running = running
        self.job = _build(tmp_path, command).start()
        jobs.append(self.job)

    monkeypatch.setattr(Watcher, "_launch", launch)
    _signal_after(monkeypatch, clients, "applied_migrations", signal.SIGINT)
    w.events.put({str(w.paths.roots[0] / "src" / "routes.rs")})
    handed = state_dir(w.root, "t") / "watch.json"
    handed.parent.mkdir(parents=True, exist_ok=True)
    handed.write_text("{}")  # a previous cycle's
    give_up = threading.Event()  # a swallowed interrupt fails the test, not its timeout
    timer = threading.Timer(30, give_up.set)
    timer.start()
    try:
        with pytest.raises(Interrupted):
            w.run(give_up)
    finally:
        timer.cancel()
    assert reported == []
    assert lines[-1] == (
        "[watch] stopped by SIGINT: the build of src/routes.rs is cancelled; the backend was "
        "not touched"
    )
    assert len(jobs) == 2  # the warm-up (cancelled by the save), the save's
    for job in jobs:
        result = job.result()
        assert result is not None
        assert result.cancelled
    for pid in (int(p) for p in (pids.read_text().split() if pids.exists() else [])):
        deadline = time.monotonic() + 5
        while _alive(pid):
            assert time.monotonic() < deadline, f"process {pid} survived the interrupt"
            time.sleep(0.01)
    assert not handed.exists()
    assert "stop backend" not in runtime.journal
    assert read_serving(w.root, "t") is None


def test_a_held_signal_is_said_to_be_waiting_and_acts_once_after_the_block() -> None:
    from devenv.watch.interrupts import held

    seen: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda s, _f: seen.append(s))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with held() as waiting:
            assert not waiting.is_set()
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)  # a second press changes nothing
            assert waiting.is_set()
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_the_pause_hook_knows_its_points_and_does_nothing_unset() -> None:
    from devenv.watch.interrupts import PAUSE_ENV, Pause

    with pytest.raises(ConfigError) as bad:
        Pause("halfway", print)
    assert PAUSE_ENV in bad.value.one_line()
    assert "build, serve, copy, health, checks, report" in bad.value.one_line()
    quiet = Pause(None, print)
    quiet.install()  # changes no handler
    quiet("build")  # returns at once
    assert quiet.transport() is None
    assert Pause("build", print).transport() is None


def test_a_pause_in_a_check_s_thread_waits_for_a_signal_that_then_acts() -> None:
    from devenv.watch.interrupts import Pause

    seen: list[int] = []
    lines: list[str] = []
    previous = {
        sig: signal.signal(sig, lambda s, _f: seen.append(s))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    pause = Pause("checks", lines.append)
    try:
        pause.install()
        paused = threading.Thread(target=pause, args=("checks",))
        paused.start()
        deadline = time.monotonic() + 5
        while not lines:
            assert time.monotonic() < deadline, "the pause said nothing"
            time.sleep(0.01)
        assert lines == ["[watch] paused at checks (DEVENV_TEST_WATCH_PAUSE): waiting for a signal"]
        assert paused.is_alive()
        signal.raise_signal(signal.SIGINT)
        paused.join(timeout=5)
        assert not paused.is_alive()
        assert seen == [signal.SIGINT]  # the handler that was there acted
        pause("checks")  # once only
        assert len(lines) == 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
