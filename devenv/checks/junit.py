"""Write check results as a JUnit XML test suite for CI dashboards."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from devenv.model import CheckResult


def junit_tree(
    checks: Sequence[CheckResult], *, suite: str = "devenv"
) -> ET.ElementTree[ET.Element]:
    """One testsuite; a test case per check, classname = the id's first segment.

    Failures are the required checks that failed, as for the exit code; an advisory failure
    is a passing case whose output says so.
    """
    failures = sum(1 for c in checks if c.blocking)
    skipped = sum(1 for c in checks if c.skipped)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    for check in checks:
        case = ET.SubElement(root, "testcase", classname=check.id.split(".", 1)[0], name=check.id)
        if check.skipped:
            ET.SubElement(case, "skipped", message=check.detail)
        elif check.blocking:
            failure = ET.SubElement(case, "failure", message=check.detail)
            failure.text = f"{check.name}: {check.detail}"
        elif check.failed:
            ET.SubElement(case, "system-out").text = f"advisory check failed: {check.detail}"
        else:
            ET.SubElement(case, "system-out").text = check.detail
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, checks: Sequence[CheckResult], *, suite: str = "devenv") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(checks, suite=suite).write(path, encoding="utf-8", xml_declaration=True)
