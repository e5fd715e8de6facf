"""The JUnit writer produces a suite that parses back with the right counts and cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from devenv.checks.junit import write_junit
from devenv.model import CheckResult


def test_junit_round_trip(tmp_path: Path) -> None:
    checks = [
        CheckResult("postgres.ready", "Postgres answers SQL", ok=True, detail="SELECT 1 in 3 ms"),
        CheckResult("route.api", "GET /api", ok=False, detail="expected 200, got 401 <html>&"),
        CheckResult("blob.roundtrip", "Blob", ok=True, detail="skipped: no bypass", skipped=True),
        CheckResult("route.x", "X", ok=False, detail="expected 401, got 200", level="advisory"),
    ]
    target = tmp_path / "out" / "checks.xml"
    write_junit(target, checks)

    suite = ET.parse(target).getroot()  # noqa: S314 - the file was just written by this test
    assert suite.tag == "testsuite"
    counts = {k: suite.get(k) for k in ("tests", "failures", "skipped", "errors")}
    # the advisory failure passes, as it does for the exit code, and says why in its output
    assert counts == {"tests": "4", "failures": "1", "skipped": "1", "errors": "0"}
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("postgres", "postgres.ready"),
        ("route", "route.api"),
        ("blob", "blob.roundtrip"),
        ("route", "route.x"),
    ]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected 200, got 401 <html>&"
    assert cases[0].find("failure") is None
    skipped = cases[2].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "skipped: no bypass"
    assert cases[3].find("failure") is None
    assert cases[3].findtext("system-out") == "advisory check failed: expected 401, got 200"
