"""The dashboard's adapter on the fake engine and services: it speaks only the use cases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devenv import app
from devenv.config.secrets import Secrets
from devenv.errors import EngineError, RefusedError
from devenv.runtime.base import Observed
from devenv.runtime.fake import FakeRuntime
from devenv.ui.adapter import Adapter
from devenv.ui.hub import Engine, Hub
from tests.unit.stacks import Fakes, fakes, make_root, options


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


def adapter(root: Path, f: Fakes, secrets: Secrets | None = None) -> Adapter:
    made = Adapter(options(root), secrets or Secrets(), adapters=f.adapters)
    _typed: Engine = made  # the adapter is what the hub drives
    return made


def test_rows_are_the_status_use_case_s_with_latency(root: Path) -> None:
    f = fakes(options(root))
    ui = adapter(root, f)
    assert ui.up(lambda _line: None).startswith("stack t is up (profile local)")
    backend = next(c for c in f.runtime.containers.values() if c.spec.service == "backend")
    backend.state, backend.exit_code = "exited", 101
    scan = ui.observe()
    rows = {s: ui.probe(scan, s) for s in ui.services}
    status = {s.name: s for s in app.status(options(root), adapters=f.adapters).services}
    for name, row in rows.items():
        said = status[name]
        assert (row.state, row.healthy, row.detail, row.url, row.image) == (
            said.state,
            said.healthy,
            said.detail,
            said.url,
            said.image,
        )
    assert rows["postgres"].latency_ms is not None
    assert rows["backend"].latency_ms is None
    assert rows["backend"].detail.startswith("backend exited with code 101")
    assert "****" in rows["postgres"].url


def test_the_scan_teaches_the_registry_the_stack_s_credentials(root: Path) -> None:
    f = fakes(options(root))
    adapter(root, f).up(lambda _line: None)
    fresh = Secrets()
    scan = adapter(root, f, fresh).observe()
    assert scan.stack.secrets()
    for value in scan.stack.secrets():
        assert value not in fresh.redact(f"said {value} once")


def test_restart_goes_through_the_use_case_and_says_its_progress(root: Path) -> None:
    f = fakes(options(root))
    ui = adapter(root, f)
    ui.up(lambda _line: None)
    f.journal.clear()
    lines: list[str] = []
    said = ui.restart("objectstore", lines.append)
    assert said.startswith("objectstore restarted and answering again in ")
    assert f.journal[:2] == ["stop objectstore", "start objectstore"]
    assert lines  # the executor's progress reached the page's callback


def test_restart_of_an_absent_container_is_refused(root: Path) -> None:
    f = fakes(options(root))
    with pytest.raises(RefusedError, match="no container for postgres"):
        adapter(root, f).restart("postgres", lambda _line: None)


def test_logs_lose_the_service_prefix(root: Path) -> None:
    f = fakes(options(root))
    ui = adapter(root, f)
    ui.up(lambda _line: None)
    pg = next(c for c in f.runtime.containers.values() if c.spec.service == "postgres")
    pg.logs = "ready to accept connections\n"
    assert ui.logs("postgres") == ["ready to accept connections"]


class BrokenEngine(FakeRuntime):
    def observe(self, project: str) -> Observed:
        raise EngineError("GET /containers/json timed out after 30 s")


def test_an_engine_error_is_one_line_above_the_rows(root: Path) -> None:
    f = fakes(options(root))
    broken = BrokenEngine()
    ui = Adapter(
        options(root), Secrets(), adapters=app.Adapters(runtime=lambda: broken, clients=f.clients)
    )

    async def main() -> str:
        hub = Hub(ui, interval=0.05)
        with hub.subscribe():
            await hub.poll_once()
        await hub.close()
        return hub.latest["services"]

    html = asyncio.run(main())
    assert "Engine error: GET /containers/json timed out after 30 s" in html
    assert "Traceback" not in html
