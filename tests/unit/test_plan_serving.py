"""The plan's rule for a backend container `devenv watch` copied a binary into: it is up to date
when it serves the checkout's source, and an image is built only when it must be recreated."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from devenv.config.load import Config, load_config
from devenv.observe import Observation
from devenv.plan import Plan, reconcile
from devenv.state import Serving
from tests.unit.stacks import IDENTITIES, make_root, observation, options
from tests.unit.test_plan import after_first_up, running

EDITED = "ed1700000000abcd"  # the checkout's fingerprint after an edit watch served


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(options(make_root(tmp_path)))


def _first(config: Config) -> tuple[Plan, Observation]:
    first = reconcile(config, observation(config))
    return first, after_first_up(config, first)


def edited(seen: Observation, *, serving: Serving | None, identity: str = EDITED) -> Observation:
    """The checkout edited to `identity`: its image was never built (watch builds none)."""
    return replace(seen, identities={**seen.identities, "backend": identity}, serving=serving)


def test_a_container_serving_the_checkout_s_source_is_kept_and_nothing_is_built(
    config: Config,
) -> None:
    _, seen = _first(config)
    plan = reconcile(config, edited(seen, serving=Serving("id-backend", EDITED, "dev")))
    assert plan.error is None
    assert plan.noop, plan.text()
    assert plan.text().splitlines() == [
        "keep              postgres              up to date",
        "wait-ready        postgres              probe SELECT 1 over TCP",
        "keep              objectstore           up to date",
        "wait-ready        objectstore           probe an S3 round trip on the bucket",
        "keep              backend               serving source ed1700000000 (dev build from "
        "devenv watch)",
        "wait-ready        backend               probe GET /health",
    ]


def test_without_the_record_the_edit_rebuilds_and_recreates(config: Config) -> None:
    _, seen = _first(config)
    plan = reconcile(config, edited(seen, serving=None))
    backend = [line for line in plan.text().splitlines() if " backend " in f" {line} "]
    assert backend == [
        "claim-image       backend               record devenv-standin/backend:src-ed1700000000 "
        "as run by project t: no build of its source prunes it",
        "build-image       backend               image devenv-standin/backend:src-ed1700000000 "
        "missing: build recipe backend",
        "recreate          backend               config changed: image",
        "start             backend               new container",
        "wait-ready        backend               probe GET /health",
    ]


def test_a_record_of_another_container_does_not_count(config: Config) -> None:
    _, seen = _first(config)
    plan = reconcile(config, edited(seen, serving=Serving("id-gone", EDITED, "dev")))
    assert plan.step("recreate:backend").cause == "config changed: image"
    assert "build-image:backend" in {s.id for s in plan.steps}


def test_another_reason_to_recreate_builds_the_image_then(config: Config, tmp_path: Path) -> None:
    _, seen = _first(config)
    text = (config.options.root / "compose" / "compose.yaml").read_text()
    root = make_root(tmp_path / "other", compose=text.replace("RUST_LOG: info", "RUST_LOG: debug"))
    changed = load_config(options(root))
    plan = reconcile(changed, edited(seen, serving=Serving("id-backend", EDITED, "dev")))
    backend = [line for line in plan.text().splitlines() if " backend " in f" {line} "]
    assert backend == [
        "claim-image       backend               record devenv-standin/backend:src-ed1700000000 "
        "as run by project t: no build of its source prunes it",
        "build-image       backend               image devenv-standin/backend:src-ed1700000000 "
        "missing: build recipe backend",
        "recreate          backend               config changed: env RUST_LOG",
        "start             backend               new container",
        "wait-ready        backend               probe GET /health",
    ]


def test_a_checkout_edited_after_watch_stopped_is_rebuilt(config: Config) -> None:
    _, seen = _first(config)
    plan = reconcile(
        config, edited(seen, serving=Serving("id-backend", EDITED, "dev"), identity="c0ffee00aa")
    )
    assert plan.step("recreate:backend").cause == (
        "serves source ed1700000000 (dev build from devenv watch); the checkout is source "
        "c0ffee00aa"
    )
    assert "build-image:backend" in {s.id for s in plan.steps}


def test_a_checkout_reverted_to_its_image_s_source_gets_that_image_back(config: Config) -> None:
    """The image matches the checkout again, but the container runs watch's binary."""
    _, seen = _first(config)
    plan = reconcile(config, replace(seen, serving=Serving("id-backend", EDITED, "release")))
    assert plan.step("recreate:backend").cause == (
        "serves source ed1700000000 (release build from devenv watch); the checkout is source "
        f"{IDENTITIES['backend'][:12]}"
    )
    assert "build-image:backend" not in {s.id for s in plan.steps}  # that image is present


def test_a_served_container_that_exited_is_started_without_a_build(config: Config) -> None:
    first, seen = _first(config)
    stopped = replace(seen, engine=running(first, state="exited"))
    plan = reconcile(config, edited(stopped, serving=Serving("id-backend", EDITED, "dev")))
    assert plan.step("start:backend").cause == (
        "container exited with code 137; serving source ed1700000000 (dev build from devenv watch)"
    )
    kinds = {s.kind for s in plan.steps if s.target == "backend"}
    assert kinds == {"start", "wait-ready"}
