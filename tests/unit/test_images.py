"""Stand-in recipes: fingerprints that move only with content, and long steps that report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devenv.config.defaults import packaged_root
from devenv.errors import ImageError
from devenv.images.build import _run, cargo_locked, runtime_dockerfile
from devenv.images.choice import backend_tag
from devenv.images.identity import (
    backend_identity,
    lock_file,
    source_fingerprint,
    workspace_root,
)
from devenv.model import BackendBuild
from tests.unit.conftest import WriteTree


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


WORKSPACE = "[workspace]\nmembers = ['crates/*']\nresolver = '2'\n"
CRATE = "[package]\nname = 'ignition-api'\nversion = '0.1.0'\n"


def test_workspace_root_and_lock_file_are_found_from_a_member(write_tree: WriteTree) -> None:
    root = write_tree({"app/Cargo.toml": WORKSPACE, "app/crates/api/Cargo.toml": CRATE})
    member = root / "app" / "crates" / "api"
    assert workspace_root(member) == root / "app"
    assert lock_file(member) is None
    (root / "app" / "Cargo.lock").write_text("# lock\n")
    assert lock_file(member) == root / "app" / "Cargo.lock"
    assert lock_file(root / "app") == root / "app" / "Cargo.lock"
    single = write_tree({"single/Cargo.toml": CRATE})
    assert workspace_root(single / "single") == single / "single"


def test_locked_follows_the_lock_file_unless_the_profile_forces_it(write_tree: WriteTree) -> None:
    root = write_tree({"app/Cargo.toml": WORKSPACE})
    said: list[str] = []
    auto = BackendBuild(root / "app")
    assert cargo_locked(auto, said.append) is False
    assert said == [
        f"backend: {root / 'app'} has no Cargo.lock: building unlocked (cargo resolves "
        "dependency versions now and writes a Cargo.lock there: commit it for repeatable builds)"
    ]
    with pytest.raises(ImageError, match="locked = true but") as info:
        cargo_locked(BackendBuild(root / "app", locked=True), said.append)
    assert info.value.hint is not None
    assert "commit a Cargo.lock" in info.value.hint
    (root / "app" / "Cargo.lock").write_text("# lock\n")
    assert cargo_locked(auto, said.append) is True
    assert cargo_locked(BackendBuild(root / "app", locked=False), said.append) is False
    assert said[-1].endswith("as services.backend.locked = false asks")


def test_a_failed_build_hints_at_cargo_s_first_error(tmp_path: Path) -> None:
    script = (
        "print('   Compiling ignition-api v0.1.0')\n"
        "print('error[E0425]: cannot find value `x` in this scope')\n"
        "print('error: could not compile `ignition-api`')\n"
        "raise SystemExit(101)"
    )
    with pytest.raises(ImageError) as info:
        _run(
            [sys.executable, "-c", script],
            what="cargo build (backend)",
            progress=lambda _m: None,
            hint="generic",
            cwd=tmp_path,
            cause_hint=True,
        )
    assert info.value.hint == (
        f"error[E0425]: cannot find value `x` in this scope: fix that in {tmp_path}, "
        "then run `devenv up` again"
    )
    locked = "print('error: the lock file needs to be updated but --locked was passed')"
    with pytest.raises(ImageError) as info:
        _run(
            [sys.executable, "-c", locked + "\nraise SystemExit(101)"],
            what="w",
            progress=lambda _m: None,
            hint="generic",
            cause_hint=True,
        )
    assert info.value.hint is not None
    assert "services.backend.locked = false" in info.value.hint


def test_backend_identity_is_per_source_and_per_build_options(write_tree: WriteTree) -> None:
    root = write_tree(
        {
            "one/Cargo.toml": CRATE,
            "one/src/main.rs": "fn main() {}\n",
            "two/Cargo.toml": CRATE,
            "two/src/main.rs": "fn main() {}\n",
            "compose/images/backend-runtime/Dockerfile": "FROM x\n",
        }
    )
    one = backend_identity(root, BackendBuild(root / "one"))
    assert one == backend_identity(root, BackendBuild(root / "one"))
    assert one != backend_identity(root, BackendBuild(root / "two"))
    assert one != backend_identity(root, BackendBuild(root / "one", binary="other"))
    assert one != backend_identity(root, BackendBuild(root / "one", locked=False))
    (root / "compose/images/backend-runtime/Dockerfile").write_text("FROM y\n")
    assert one != backend_identity(root, BackendBuild(root / "one"))
    (root / "one" / "Dockerfile.runtime").write_text("FROM z\n")
    own = backend_identity(root, BackendBuild(root / "one"))
    (root / "compose/images/backend-runtime/Dockerfile").write_text("FROM w\n")
    assert own == backend_identity(root, BackendBuild(root / "one"))


def test_checkouts_without_dockerfile_runtime_get_devenv_s_recipe(write_tree: WriteTree) -> None:
    root = write_tree({"app/Cargo.toml": CRATE, "ref/Dockerfile.runtime": "FROM x\n"})
    assert runtime_dockerfile(root, root / "ref") == (root / "ref" / "Dockerfile.runtime", True)
    # the project's own recipe when it has one, else devenv's packaged recipe
    packaged = packaged_root() / "compose" / "images" / "backend-runtime" / "Dockerfile"
    assert runtime_dockerfile(root, root / "app") == (packaged, False)
    own = root / "compose" / "images" / "backend-runtime" / "Dockerfile"
    own.parent.mkdir(parents=True)
    own.write_text("FROM y\n")
    assert runtime_dockerfile(root, root / "app") == (own, False)


def test_fingerprint_skips_target_dirs_inside_the_checkout_only(tmp_path: Path) -> None:
    checkout = tmp_path / "target" / "app"  # a checkout that lives under a dir named target
    (checkout / "src").mkdir(parents=True)
    (checkout / "src" / "main.rs").write_text("fn main() {}\n")
    first = source_fingerprint(checkout)
    (checkout / "src" / "main.rs").write_text("fn main() { println!(); }\n")
    assert source_fingerprint(checkout) != first
    edited = source_fingerprint(checkout)
    (checkout / "crates" / "api" / "target").mkdir(parents=True)
    (checkout / "crates" / "api" / "target" / "junk").write_text("build output")
    assert source_fingerprint(checkout) == edited
