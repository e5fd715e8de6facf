"""Fixtures for tests on the lab: skipped, with the reason, where the lab cannot run."""

from __future__ import annotations

import pytest

from tests.lab import lab


@pytest.fixture(scope="session")
def lab_ready() -> lab.LabEngine:
    """The lab engine, its registry mirror (seeded) and the user `devlab`, started once."""
    reason = lab.absent_reason()
    if reason is not None:
        pytest.skip(reason)
    lab.ensure()
    return lab.LabEngine()
