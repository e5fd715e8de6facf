"""Suite-wide: tests that need the Docker engine are marked `docker` and run after the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINE_DIRS = (Path(__file__).parent / "integration", Path(__file__).parent / "lab")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(folder in Path(str(item.fspath)).parents for folder in ENGINE_DIRS):
            item.add_marker(pytest.mark.docker)
    # stable: unit tests first (seconds, no engine), then the engine's, each in file order
    items.sort(key=lambda item: item.get_closest_marker("docker") is not None)
