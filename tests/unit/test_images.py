"""Stand-in recipes: fingerprints that move only with content, and long steps that report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devenv.errors import ImageError
from devenv.images.build import _run, backend_tag, source_fingerprint


def test_source_fingerprint_follows_content_not_timestamps(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    main = tmp_path / "src" / "main.rs"
    main.write_text("fn main() {}\n")
    (tmp_path / "Cargo.toml").write_text("[package]\nname = 'x'\n")
    first = source_fingerprint(tmp_path)
    main.touch()
    assert source_fingerprint(tmp_path) == first
    main.write_text("fn main() { println!(); }\n")
    assert source_fingerprint(tmp_path) != first
    assert len(first) == 16


def test_backend_tags_are_per_source() -> None:
    assert backend_tag("devenv-standin/backend:dev", "0123456789abcdef") == (
        "devenv-standin/backend:src-0123456789ab"
    )
    assert backend_tag("registry:5000/backend", "ab") == "registry:5000/backend:src-ab"


def test_long_step_reports_progress_and_fails_with_its_last_lines() -> None:
    seen: list[str] = []
    script = "import sys\nfor i in range(5): print('line', i)\nsys.exit(3)"
    with pytest.raises(ImageError, match=r"exit 3\): line 2 \| line 3 \| line 4"):
        _run([sys.executable, "-c", script], what="step", progress=seen.append, hint="h", every=0)
    assert seen[0].startswith("step: ")
    assert "  step: line 4" in seen


def test_missing_tool_names_the_fix() -> None:
    with pytest.raises(ImageError, match="`no-such-tool-xyz` is not installed") as info:
        _run(["no-such-tool-xyz"], what="step", progress=lambda _m: None, hint="install it")
    assert info.value.hint == "install it"
