"""`devenv ui` in a real headless Chromium, against a real stack of its own."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.conftest import REPO, Stack, unique_project

T = TypeVar("T")
ARTIFACTS = Path(os.environ.get("DEVENV_ARTIFACTS") or REPO / "artifacts")
SERVICES = ("postgres", "objectstore", "backend")


@dataclass
class Dashboard:
    url: str  # the dashboard's root
    login: str  # the one-time link `devenv ui` printed
    port: int
    stack: Stack
    proc: subprocess.Popen[str]
    cookie: dict[str, Any] = field(default_factory=dict)  # as the signed-in browser holds it

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def cookie_name(self) -> str:
        return f"devenv_ui_{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client with the browser's session cookie."""
        return httpx.Client(cookies={self.cookie_name: self.cookie["value"]}, **kwargs)

    def token(self) -> str:
        with self.client(timeout=10) as client:
            html = client.get(self.url).text
        marker = '<meta name="devenv-token" content="'
        start = html.index(marker) + len(marker)
        return html[start : html.index('"', start)]


@pytest.fixture(scope="module")
def ui_stack(images: None) -> Iterator[Stack]:
    """A stack of its own: these tests kill and restart its containers."""
    stack = Stack(project=unique_project("ui"), root=REPO)
    try:
        stack.up()
        yield stack
    finally:
        stack.destroy()


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"devenv ui printed no URL within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"devenv ui exited {proc.returncode} before printing its URL:\n{err}")
    return line


@pytest.fixture(scope="module")
def dashboard(ui_stack: Stack, browser: WebDriver) -> Iterator[Dashboard]:
    """`devenv ui` serving, the browser signed in with the link it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "devenv", "ui", "--no-browser", "--json"],
        cwd=ui_stack.root,
        env=ui_stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = json.loads(_first_line(proc, 30))
        assert said["project"] == ui_stack.project
        login = said["url"]
        port = int(login.split(":")[2].split("/")[0])
        assert login.startswith(f"http://127.0.0.1:{port}/login?token=")
        board = Dashboard(f"http://127.0.0.1:{port}/", login, port, ui_stack, proc)
        browser.get(login)  # as the user's browser opens it
        wait(browser, 10, "signed in and on the dashboard", lambda d: d.current_url == board.url)
        board.cookie = browser.get_cookie(board.cookie_name) or {}
        yield board
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"devenv ui did not stop on SIGTERM within 20 s:\n{err}")
        assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail("chromium and chromium-driver are missing: `make test` installs them (as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, timeout: float, what: str, probe: Callable[[WebDriver], T]) -> T:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(probe)
    except TimeoutException:
        pytest.fail(f"not within {timeout} s: {what}")


def js(driver: WebDriver, script: str, *args: Any) -> Any:
    """Read the live DOM in one step (fragments are swapped in while we look)."""
    return driver.execute_script(script, *args)


def health(driver: WebDriver) -> dict[str, str]:
    found: dict[str, str] = js(
        driver,
        "const out = {};"
        "for (const tr of document.querySelectorAll('#services tr[data-service]'))"
        "  out[tr.dataset.service] = tr.dataset.health;"
        "return out;",
    )
    return found


def run_number(driver: WebDriver) -> int:
    return int(js(driver, "return document.querySelector('#checks [data-run]').dataset.run"))


def idle(driver: WebDriver) -> bool:
    busy = js(driver, "return document.querySelector('#action [data-busy]').dataset.busy")
    return bool(busy == "false")


def click(driver: WebDriver, selector: str) -> None:
    """A real click on a button that the stream may replace at any moment."""
    enabled = "const b = document.querySelector(arguments[0]); return b !== null && !b.disabled;"
    deadline = time.monotonic() + 5
    while True:
        wait(driver, 60, f"{selector} enabled", lambda d: js(d, enabled, selector))
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise


def check_results(driver: WebDriver) -> dict[str, str]:
    found: dict[str, str] = js(
        driver,
        "const out = {};"
        "for (const tr of document.querySelectorAll('#checks tr[data-check]'))"
        "  out[tr.dataset.check] = tr.dataset.result;"
        "return out;",
    )
    return found


def phase_verdict(driver: WebDriver, phase: str) -> str | None:
    verdict: str | None = js(
        driver,
        "const g = document.querySelector(`#phases svg g[data-phase='${arguments[0]}']`);"
        "return g ? g.dataset.local : null;",
        phase,
    )
    return verdict


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, not just the window, into the artefact directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = int(js(driver, "return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, height + 120)
    try:
        target = ARTIFACTS / name
        assert driver.save_screenshot(str(target))
        return target
    finally:
        driver.set_window_size(1400, 1000)


def open_page(driver: WebDriver, dashboard: Dashboard) -> None:
    driver.get(dashboard.url)
    wait(driver, 10, "the event stream connected", lambda d: js(d, LIVE) == "true")


LIVE = "return document.getElementById('live').dataset.live"


def secrets_of(stack: Stack) -> list[str]:
    creds = [v for v in stack.state()["credentials"].values() if v]
    assert len(creds) >= 3  # postgres password, storage access key and secret key
    return creds


# --- tests ---------------------------------------------------------------------------------


def test_the_page_shows_three_healthy_services_and_the_phase_graph(
    dashboard: Dashboard, browser: WebDriver
) -> None:
    open_page(browser, dashboard)
    wait(
        browser,
        15,
        "three healthy services",
        lambda d: health(d) == dict.fromkeys(SERVICES, "healthy"),
    )
    wait(browser, 60, "the first check run", lambda d: run_number(d) >= 1)
    assert phase_verdict(browser, "11") in ("can-proceed", "complete")
    graph = browser.find_element(By.CSS_SELECTOR, "#phases svg")
    assert graph.find_elements(By.CSS_SELECTOR, "g[data-phase='11']")
    later = graph.find_elements(By.CSS_SELECTOR, "g[data-blocker='LATER-001']")
    assert later
    assert "LATER-001" in later[0].text
    # URLs masked exactly as `devenv status` masks them
    status = {s["name"]: s["url"] for s in dashboard.stack.status()["services"]}
    shown = js(
        browser,
        "const out = {};"
        "for (const tr of document.querySelectorAll('#services tr[data-service]'))"
        "  out[tr.dataset.service] = tr.querySelectorAll('td.mono')[1].textContent;"
        "return out;",
    )
    assert shown == status
    assert ":****@" in shown["postgres"]


def test_the_last_watch_cycle_appears_and_goes_with_its_file(
    dashboard: Dashboard, browser: WebDriver
) -> None:
    open_page(browser, dashboard)
    path = dashboard.stack.root / ".devenv" / dashboard.stack.project / "watch.json"
    cycle = {
        "schema_version": 1,
        "pid": os.getpid(),  # a live process stands for the running watch
        "time": datetime.now(UTC).isoformat(),
        "changed": ["backend/src/routes.rs"],
        "build_seconds": 4.25,
        "restart_seconds": 0.5,
        "checks": {"passed": 22, "failed": 1},
        "ok": False,
        "error": "route.health: GET /health answered 500",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cycle), encoding="utf-8")
    tmp.replace(path)  # as watch writes it: whole, never half
    try:
        shown = wait(
            browser,
            5,
            "the watch panel",
            lambda d: d.find_elements(By.CSS_SELECTOR, "#watch [data-watch-ok='false']"),
        )
        text = shown[0].text
        assert "build 4.2 s, restart 0.5 s, checks 22 passed, 1 failed" in text
        assert "route.health: GET /health answered 500" in text
        assert "backend/src/routes.rs" in text
    finally:
        path.unlink()
    wait(browser, 5, "the panel gone with the file", lambda d: js(d, WATCH_GONE))


WATCH_GONE = "return document.getElementById('watch').childElementCount === 0"


def test_without_the_cookie_every_route_is_refused_and_no_token_leaks(
    dashboard: Dashboard,
) -> None:
    # the browser signed in with the printed link: its cookie is HttpOnly, SameSite=Strict,
    # for 127.0.0.1 only (every port: hence a name per port), gone with the browser session
    cookie = dashboard.cookie
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["domain"] == "127.0.0.1"
    assert cookie["path"] == "/"
    assert "expiry" not in cookie
    action_token = dashboard.token()
    with httpx.Client(timeout=10) as stranger:  # another user of the machine: no cookie
        for path in ("", "events", "logs/postgres", "logs/backend"):
            answer = stranger.get(dashboard.url + path)
            assert answer.status_code == 401, path
            assert action_token not in answer.text
        # the link is spent: it signs nobody else in
        again = stranger.get(dashboard.login)
        assert again.status_code == 401
        assert "set-cookie" not in again.headers
        # no token to scrape: every action is refused, with or without a guessed one
        for path in ("actions/up", "actions/checks", "actions/restart/postgres"):
            for headers in ({}, {"X-Devenv-Token": "guessed"}):
                answer = stranger.post(
                    dashboard.url + path, headers={"Origin": f"http://{dashboard.host}", **headers}
                )
                assert answer.status_code == 401, path
        assert stranger.get(dashboard.url + "static/app.js").status_code == 200  # public
        # a forged cookie (another port's name, or a guessed value) is no better
    for name, value in ((f"devenv_ui_{dashboard.port + 1}", cookie["value"]),
                        (dashboard.cookie_name, "guessed")):  # fmt: skip
        with httpx.Client(timeout=10, cookies={name: value}) as forger:
            assert forger.get(dashboard.url).status_code == 401


def test_actions_from_other_pages_are_refused(dashboard: Dashboard) -> None:
    token = dashboard.token()
    own = {"Host": dashboard.host, "Origin": f"http://{dashboard.host}"}
    url = dashboard.url + "actions/checks"
    refused = [
        {},  # no token
        {"X-Devenv-Token": "guessed"},
        {"X-Devenv-Token": token, "Host": f"rebound.example:{dashboard.port}"},
        {"X-Devenv-Token": token, "Origin": "http://evil.example"},
        {"X-Devenv-Token": token, "Origin": "null"},
    ]
    with dashboard.client(timeout=10) as client:
        for extra in refused:
            response = client.post(url, headers={**own, **extra})
            assert response.status_code == 403, extra
        for path in ("", "events", "logs/postgres", "static/app.js"):
            foreign = client.get(
                dashboard.url + path, headers={"Host": f"evil.example:{dashboard.port}"}
            )
            assert foreign.status_code == 403, path
        # the same request with this run's token and our own Host and Origin is accepted
        deadline = time.monotonic() + 60
        while True:
            accepted = client.post(url, headers={**own, "X-Devenv-Token": token})
            if accepted.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # another action (the startup check run) still holds the lock
        assert accepted.status_code == 202, accepted.text


def test_no_secret_in_the_page_its_event_stream_or_the_logs(
    dashboard: Dashboard, browser: WebDriver
) -> None:
    secrets = secrets_of(dashboard.stack)
    seen: dict[str, str] = {}
    with (
        dashboard.client(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", dashboard.url + "events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = ""
        deadline = time.monotonic() + 60
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen[event] = seen.get(event, "") + line + "\n"
            done = all(n in seen for n in ("services", "checks", "phases", "meta"))
            if (
                done
                and 'data-run="' in seen["checks"]
                and 'data-service="backend"' in seen["services"]
            ):
                break
            assert time.monotonic() < deadline, f"stream incomplete: {sorted(seen)}"
        texts = {f"event {k}": v for k, v in seen.items()}
        texts["page"] = client.get(dashboard.url).text
        for service in SERVICES:
            texts[f"logs {service}"] = client.get(dashboard.url + f"logs/{service}").text
    assert ":****@" in texts["event services"]
    assert "<pre" in texts["logs postgres"]
    open_page(browser, dashboard)
    Select(browser.find_element(By.ID, "log-service")).select_by_value("backend")
    wait(
        browser,
        10,
        "the backend's log tail",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#logs [data-logs='backend']"),
    )
    texts["browser"] = browser.page_source
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a credential appears in {where}"


def test_a_killed_postgres_shows_unhealthy_within_3s_and_comes_back(
    dashboard: Dashboard, browser: WebDriver
) -> None:
    stack = dashboard.stack
    open_page(browser, dashboard)
    wait(browser, 15, "all healthy", lambda d: health(d) == dict.fromkeys(SERVICES, "healthy"))
    wait(browser, 60, "no action running", idle)
    before = run_number(browser)
    js(browser, "window.devenvNoReload = 'same page';")

    stack.container("postgres").kill()
    killed = time.monotonic()
    wait(
        browser, 3, "postgres unhealthy on the page", lambda d: health(d)["postgres"] == "unhealthy"
    )
    took = time.monotonic() - killed
    assert took < 3.0
    assert js(browser, "return window.devenvNoReload") == "same page"  # no reload happened

    click(browser, "#run-checks")
    wait(browser, 60, "a new check run", lambda d: run_number(d) == before + 1)
    results = check_results(browser)
    assert results["postgres.running"] == "fail"
    assert results["postgres.ready"] == "skip"
    assert phase_verdict(browser, "11") == "blocked"
    down = screenshot(browser, "ui-postgres-down.png")
    assert down.stat().st_size > 10_000

    wait(browser, 60, "the check run finished", idle)
    click(browser, "#services tr[data-service='postgres'] button[data-action]")
    wait(
        browser,
        60,
        "everything healthy again",
        lambda d: health(d) == dict.fromkeys(SERVICES, "healthy"),
    )
    wait(browser, 60, "the restart finished", idle)
    click(browser, "#run-checks")
    wait(browser, 60, "a third check run", lambda d: run_number(d) == before + 2)
    results = check_results(browser)
    assert results["postgres.running"] == "ok"
    assert "fail" not in results.values(), results
    assert phase_verdict(browser, "11") in ("can-proceed", "complete")

    wait(browser, 60, "the check run finished", idle)
    click(browser, "#run-up")
    done = "const a = document.querySelector('#action [data-action-name]');"
    done += "return a !== null && a.dataset.actionName === 'up' && a.dataset.busy === 'false';"
    wait(browser, 120, "up finished", lambda d: js(d, done))  # one read: the fragment may swap
    said = browser.find_element(By.ID, "action").text
    assert "done" in said, said
    Select(browser.find_element(By.ID, "log-service")).select_by_value("postgres")
    wait(
        browser,
        10,
        "the postgres log tail, restart included",
        lambda d: "ready to accept connections" in d.find_element(By.ID, "logs").text,
    )
    healthy = screenshot(browser, "ui-healthy.png")
    assert healthy.stat().st_size > 10_000
    sys.stderr.write(
        f"postgres shown unhealthy {took:.2f} s after the kill; screenshots in {ARTIFACTS}\n"
    )
