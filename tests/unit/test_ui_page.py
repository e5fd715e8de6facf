"""The dashboard's view models and HTML: what each fragment says, escaping, and the app's guard."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devenv.checks import ids
from devenv.model import CheckResult
from devenv.ui import page
from devenv.ui.guard import Keys
from devenv.ui.hub import Hub
from devenv.ui.server import create_app
from devenv.ui.views import ActionView, CheckRun, ServiceView, check_view, summary
from devenv.ui.watch import WatchCycle, WatchView
from tests.unit.ui_fake import SECRET, FakeEngine

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
PORT = 40404
KEYS = Keys(login="one-time-link-token", session="session-cookie-value", action="action-token")
TOKEN = KEYS.action


def row(**changes: object) -> ServiceView:
    values: dict[str, object] = {
        "name": "postgres",
        "provider": "local",
        "state": "running",
        "healthy": True,
        "detail": "SELECT 1 ok",
        "latency_ms": 3.25,
        "image": "devenv-standin/postgres:15",
        "url": "postgres://ignition:****@127.0.0.1:5432/ignition",
    }
    values.update(changes)
    return ServiceView(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("check", "result", "detail"),
    [
        (CheckResult("a", "A", True, "GET 200"), "ok", "GET 200"),
        (CheckResult("a", "A", False, "GET 500"), "fail", "GET 500"),
        (CheckResult("a", "A", False, "no header", level="advisory"), "warn", "no header"),
        (CheckResult("a", "A", False, "no bypass", skipped=True), "skip", "no bypass"),
        (
            CheckResult("a", "A", False, "exited", skipped=True, cause="backend.running"),
            "skip",
            "not run: backend.running failed",
        ),
    ],
)
def test_check_results_read_as_devenv_check_prints_them(
    check: CheckResult, result: str, detail: str
) -> None:
    view = check_view(check)
    assert (view.result, view.detail) == (result, detail)


def test_summary_counts_like_devenv_check() -> None:
    checks = [
        CheckResult("a", "A", True, ""),
        CheckResult("b", "B", False, ""),
        CheckResult("c", "C", False, "", level="advisory"),
        CheckResult("d", "D", False, "", skipped=True, cause="x"),
    ]
    assert summary(checks) == "1 passed, 1 failed, 1 advisory failed, 1 skipped"


@pytest.mark.parametrize(
    ("latency", "shown"), [(None, "-"), (0.42, "0.4 ms"), (9.96, "10.0 ms"), (123.4, "123 ms")]
)
def test_latency(latency: float | None, shown: str) -> None:
    assert row(latency_ms=latency).latency == shown


def test_a_services_row_carries_what_the_tests_and_the_eye_need() -> None:
    html = page.render_services([row(), row(name="backend", healthy=False, state="exited")])
    assert '<tr data-service="postgres" data-health="healthy" data-state="running">' in html
    assert '<tr data-service="backend" data-health="unhealthy" data-state="exited">' in html
    assert "postgres://ignition:****@127.0.0.1:5432/ignition" in html
    assert "3.2 ms" in html
    assert 'data-action="/actions/restart/postgres"' in html


def test_no_restart_button_for_an_external_provider() -> None:
    html = page.render_services([row(provider="external", state="external")])
    assert "/actions/restart/" not in html


def test_data_from_the_stack_is_escaped() -> None:
    html = page.render_services([row(detail='<img src=x onerror="alert(1)">')])
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


def test_an_engine_error_is_shown_above_the_last_rows() -> None:
    html = page.render_services([row()], "Docker unavailable: cannot reach the engine")
    assert html.index("Docker unavailable") < html.index('data-service="postgres"')


def test_checks_fragment_numbers_each_run() -> None:
    assert 'data-run="0"' in page.render_checks(None, running=False)
    assert "Running the checks" in page.render_checks(None, running=True)
    checks = [CheckResult(ids.ROUTE_ROOT, "Root", False, "GET / answered 500")]
    run = CheckRun(3, "12:00:00", 1.25, tuple(check_view(c) for c in checks), summary(checks))
    html = page.render_checks(run, running=False)
    assert '<div data-run="3" data-failed="1">' in html
    assert '<tr data-check="route.root" data-result="fail">' in html
    assert "Run #3 at 12:00:00 (1.2 s)" in html
    failed = CheckRun(4, "12:00:01", 0.5, error="Config error: contracts/x.toml: bad")
    assert "Config error: contracts/x.toml: bad" in page.render_checks(failed, running=False)


def test_phases_fragment_waits_for_a_run_then_draws() -> None:
    assert "waiting for the first check run" in page.render_phases(None)
    broken = CheckRun(1, "12:00:00", 0.1, error="Docker unavailable: no engine")
    assert "Docker unavailable" in page.render_phases(broken)


def test_watch_panel() -> None:
    cycle = WatchCycle(
        time=NOW - timedelta(seconds=42),
        changed=("backend/src/a.rs", "backend/src/b.rs"),
        build_seconds=3.5,
        restart_seconds=0.75,
        passed=26,
        failed=1,
        ok=False,
        error="route.health: GET 500",
    )
    html = page.render_watch(WatchView(cycle), now=NOW)
    assert 'data-watch-ok="false"' in html
    assert "last cycle 42 s ago: build 3.5 s, restart 0.8 s" in html
    assert "checks 26 passed, 1 failed" in html
    assert "route.health: GET 500" in html
    assert "backend/src/a.rs, backend/src/b.rs" in html
    assert page.render_watch(None, now=NOW) == ""
    problem = WatchView(problem="watch.json is unusable: ok must be true or false")
    assert "ok must be true or false" in page.render_watch(problem, now=NOW)


def test_action_fragment_says_busy_until_done() -> None:
    running = ActionView("up", running=True, started="12:00:00", lines=("building backend",))
    html = page.render_action(running)
    assert 'data-busy="true"' in html
    assert "running since 12:00:00" in html
    assert "building backend" in html
    done = ActionView("up", ok=False, message="Not ready: backend", seconds=2.0)
    html = page.render_action(done)
    assert 'data-busy="false"' in html
    assert "failed in 2.0 s: Not ready: backend" in html


# --- the app, in process (httpx's ASGI transport; the real server is in the integration tests)


class Client:
    """Synchronous calls into the app on one event loop, which the hub's tasks share."""

    def __init__(self, *, signed_in: bool = True) -> None:
        self.hub = Hub(FakeEngine(), interval=0.05)
        self.logins = 0
        app = create_app(
            self.hub,
            port=PORT,
            keys=KEYS,
            project="demo",
            profile="local",
            on_login=self._logged_in,
        )
        self.runner = asyncio.Runner()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://127.0.0.1:{PORT}"
        )
        if signed_in:
            assert self.get(f"/login?token={KEYS.login}").status_code == 200

    def _logged_in(self) -> None:
        self.logins += 1

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.http.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.http.post(path, **kwargs))

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.run(self.hub.close())
        self.runner.close()


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def test_the_page_carries_the_token_and_no_secret(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert f'<meta name="devenv-token" content="{TOKEN}">' in response.text
    assert SECRET not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/logs/postgres"])
def test_reads_with_a_foreign_host_are_refused(client: Client, path: str) -> None:
    assert client.get(path).status_code == 200
    refused = client.get(path, headers={"Host": "rebound.example:40404"})
    assert refused.status_code == 403


@pytest.mark.parametrize("path", ["/actions/checks", "/actions/up", "/actions/restart/postgres"])
def test_actions_need_token_host_and_origin(client: Client, path: str) -> None:
    good = {"X-Devenv-Token": TOKEN, "Origin": f"http://127.0.0.1:{PORT}"}
    assert client.post(path).status_code == 403
    assert client.post(path, headers={"X-Devenv-Token": "nope"}).status_code == 403
    assert client.post(path, headers={**good, "Origin": "http://evil.example"}).status_code == 403
    assert client.post(path, headers={**good, "Host": "evil.example"}).status_code == 403
    accepted = client.post(path, headers=good)
    assert accepted.status_code == 202
    assert accepted.json() == {"started": path.removeprefix("/actions/").replace("/", " ")}


def test_unknown_service_is_404(client: Client) -> None:
    headers = {"X-Devenv-Token": TOKEN}
    assert client.post("/actions/restart/redis", headers=headers).status_code == 404
    assert client.get("/logs/redis").status_code == 404


def test_logs_are_redacted(client: Client) -> None:
    response = client.get("/logs/backend")
    assert "backend started with ****" in response.text
    assert SECRET not in response.text


def test_a_second_action_while_one_runs_is_409(client: Client) -> None:
    gate = threading.Event()
    engine = client.hub.engine
    assert isinstance(engine, FakeEngine)
    engine.restart = lambda service, progress: (gate.wait(5), "done")[1]  # type: ignore[method-assign]
    headers = {"X-Devenv-Token": TOKEN}
    assert client.post("/actions/restart/postgres", headers=headers).status_code == 202
    busy = client.post("/actions/checks", headers=headers)
    gate.set()
    assert busy.status_code == 409
    assert busy.json() == {"error": "busy: restart postgres is running"}


# --- signing in ----------------------------------------------------------------------------


def test_the_one_time_link_trades_for_an_httponly_strict_cookie_once() -> None:
    c = Client(signed_in=False)
    try:
        for path in ("/", "/events", "/logs/postgres"):
            response = c.get(path)
            assert response.status_code == 401, path
            assert TOKEN not in response.text
        assert c.post("/actions/up", headers={"X-Devenv-Token": TOKEN}).status_code == 401
        assert c.get("/static/app.js").status_code == 200  # assets stay public
        assert c.get("/login?token=guessed").status_code == 401

        signed = c.get(f"/login?token={KEYS.login}")
        assert signed.status_code == 200
        assert 'http-equiv="refresh" content="0;url=/"' in signed.text
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"devenv_ui_{PORT}={KEYS.session};")
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes
        assert not any(a.startswith(("domain", "max-age", "expires")) for a in attributes)
        assert c.logins == 1
        page_html = c.get("/")
        assert page_html.status_code == 200
        assert f'<meta name="devenv-token" content="{TOKEN}">' in page_html.text

        # the link again: fine for the browser that holds the cookie, useless for any other
        assert c.get(f"/login?token={KEYS.login}").status_code == 200
        c.http.cookies.clear()
        assert c.get(f"/login?token={KEYS.login}").status_code == 401
        assert c.get("/").status_code == 401
        assert c.logins == 1
    finally:
        c.close()


def test_a_cookie_of_another_port_or_value_does_not_sign_in() -> None:
    c = Client(signed_in=False)
    try:
        c.http.cookies.set(f"devenv_ui_{PORT + 1}", KEYS.session)
        assert c.get("/").status_code == 401
        c.http.cookies.clear()
        c.http.cookies.set(f"devenv_ui_{PORT}", KEYS.login)
        assert c.get("/").status_code == 401
    finally:
        c.close()


# --- redaction before escaping -------------------------------------------------------------

ODD = "Zq8&Secret'pw\"<x>\\y"


def _plain_only(text: str) -> str:
    """A redactor that knows only the value as written: finding it proves the template
    redacted before escaping."""
    return text.replace(ODD, "****")


@pytest.mark.parametrize(
    "render",
    [
        lambda: page.render_services([row(detail=f"pw {ODD}")], f"err {ODD}", redact=_plain_only),
        lambda: page.render_logs("postgres", [f"a {ODD}", f"b {ODD}"], redact=_plain_only),
        lambda: page.render_logs("postgres", [], f"Engine error: {ODD}", redact=_plain_only),
        lambda: page.render_action(
            ActionView("up", running=True, lines=(f"x {ODD}",), message=ODD), redact=_plain_only
        ),
        lambda: page.render_checks(
            CheckRun(1, "12:00", 0.1, (check_view(CheckResult("a", "A", False, ODD)),), ODD),
            running=False,
            redact=_plain_only,
        ),
        lambda: page.render_watch(
            WatchView(WatchCycle(NOW, (ODD,), 1.0, 1.0, 1, 0, False, ODD)),
            now=NOW,
            redact=_plain_only,
        ),
        lambda: page.render_phases(CheckRun(1, "12:00", 0.1, error=ODD), redact=_plain_only),
        lambda: page.render_phases(_run_with_evidence(ODD), redact=_plain_only),
    ],
)
def test_values_are_redacted_as_plain_text_before_they_are_escaped(render: Any) -> None:
    import html
    import json

    text = render()
    assert "****" in text
    assert "Zq8" not in text, text
    for spelled in (ODD, html.escape(ODD), str(markupsafe_escape(ODD)), json.dumps(ODD)[1:-1]):
        assert spelled not in text


def _run_with_evidence(detail: str) -> CheckRun:
    from devenv.model import Profile
    from devenv.phases.evaluate import evaluate
    from devenv.phases.registry import load_registry

    checks = tuple(CheckResult(c, ids.check_name(c), False, detail) for c in ids.ALL_CHECK_IDS)
    profile = Profile(name="local", path=None, bindings={}, dev_bypass=True)
    return CheckRun(1, "12:00", 0.1, evaluation=evaluate(load_registry(), profile, checks))


def markupsafe_escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
