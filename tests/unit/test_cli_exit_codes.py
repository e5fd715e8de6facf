"""Exit codes that say the truth: status, check and report, with the app layer stubbed out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devenv import __version__
from devenv import app as core
from devenv.checks import ids
from devenv.model import CheckResult
from tests.unit.clirun import run_cli as cli

REPO = Path(__file__).resolve().parents[2]
DEAD = "backend exited with code 101: panicked at path_router.rs:138:17: Path segments"


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEVENV_ROOT", str(REPO))
    monkeypatch.setenv("DEVENV_PROJECT", "t-exit-codes")


def results(*special: CheckResult) -> list[CheckResult]:
    by_id = {c.id: c for c in special}
    return [
        by_id.get(cid, CheckResult(cid, ids.check_name(cid), True, "ok"))
        for cid in ids.ALL_CHECK_IDS
    ]


def dead_backend() -> list[CheckResult]:
    skipped = [
        CheckResult(
            cid, ids.check_name(cid), True, f"skipped: {DEAD}", True, cause=ids.BACKEND_RUNNING
        )
        for cid in (ids.BACKEND_HEALTH, *ids.CONTRACT_CHECKS)
    ]
    return results(CheckResult(ids.BACKEND_RUNNING, "Backend running", False, DEAD), *skipped)


def stub_checks(monkeypatch: pytest.MonkeyPatch, found: list[CheckResult]) -> None:
    run = core.CheckRun("local", tuple(found))
    monkeypatch.setattr(core, "run_checks", lambda _options, **_kw: run)


def test_check_exits_1_with_the_root_cause_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_checks(monkeypatch, dead_backend())
    code, out, err = cli(monkeypatch, capsys, "check")
    assert code == 1
    assert out.count(DEAD) == 1
    assert "skip  route.root                  (backend.running failed)" in out
    # 27 checks: the 17 that need the backend are skipped, its .running check failed
    assert out.splitlines()[-1] == "9 passed, 1 failed, 17 skipped because backend.running failed"
    assert err.strip() == f"Checks failed: backend.running: {DEAD}"


def test_check_advisory_failure_is_listed_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host = CheckResult(
        ids.ROUTE_API_FOREIGN_HOST, "Host", False, "bypass accepted Host x", level="advisory"
    )
    stub_checks(monkeypatch, results(host))
    code, out, err = cli(monkeypatch, capsys, "check")
    assert code == 0, err
    assert "warn  route.api.foreign_host      bypass accepted Host x" in out
    assert "1 advisory failed (blocks nothing)" in out.splitlines()[-1]
    code, out, _err = cli(monkeypatch, capsys, "check", "--json")
    data = json.loads(out)
    assert (code, data["ok"], data["failed"]) == (0, True, [])
    assert data["advisory_failed"] == [ids.ROUTE_API_FOREIGN_HOST]


@pytest.mark.parametrize(
    ("extra", "expected"), [((), 1), (("--exit-zero",), 0)], ids=["default", "exit-zero"]
)
def test_report_exits_1_on_a_regression_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    extra: tuple[str, ...],
    expected: int,
) -> None:
    stub_checks(monkeypatch, dead_backend())
    out_file = tmp_path / "report.md"
    code, _out, err = cli(
        monkeypatch, capsys, "report", "--format", "markdown", "-o", str(out_file), *extra
    )
    assert code == expected, err
    assert "🟠 Regressed (backend.running)" in out_file.read_text(encoding="utf-8")
    if expected:
        assert err.strip().splitlines()[-1] == (
            "Checks failed: required checks failed: backend.running; regressed: phase 08 "
            "(fix: see the report; --exit-zero exits 0 after writing it)"
        )


def test_report_exits_0_when_everything_holds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_checks(monkeypatch, results())
    code, out, err = cli(monkeypatch, capsys, "report", "--json")
    assert code == 0, err
    assert json.loads(out)["summary"]["regressed"] == []
    assert json.loads(out)["devenv_version"] == __version__


def _status(healthy: bool) -> core.StatusResult:
    services = (
        core.ServiceStatus("postgres", "local", "running", True, "pg",
                           "postgres://***@127.0.0.1:5432/ignition", "SELECT 1 ok"),
        core.ServiceStatus("backend", "local", "running" if healthy else "exited", healthy, "be",
                           "http://127.0.0.1:8080", "GET 200" if healthy else DEAD),
    )  # fmt: skip
    return core.StatusResult("p", "local", services)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_status_exits_1_when_a_service_is_unhealthy_and_still_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    monkeypatch.setattr(core, "status", lambda _options, **_kw: _status(False))
    code, out, err = cli(monkeypatch, capsys, "status", *(["--json"] if as_json else []))
    assert code == 1
    assert err.strip() == f"Unhealthy: backend: {DEAD} (fix: `devenv up` starts what is missing)"
    if as_json:
        assert json.loads(out)["services"][1]["healthy"] is False
    else:
        assert f"  backend: {DEAD}" in out.splitlines()


def test_status_exits_0_when_healthy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(core, "status", lambda _options, **_kw: _status(True))
    code, _out, err = cli(monkeypatch, capsys, "status")
    assert (code, err) == (0, "")
