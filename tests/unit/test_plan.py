"""The planner is pure: configuration + one observation -> every step, with causes and order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from devenv.config.load import Config, load_config
from devenv.errors import PortConflictError, RefusedError
from devenv.migrations import AppliedMigration, Migration, MigrationSet
from devenv.observe import MigrationFacts, Observation
from devenv.plan import Plan, plan_restart, reconcile, volume_labels
from devenv.runtime.base import (
    LABEL_HASH,
    LABEL_PG_MAJOR,
    ImageInfo,
    Observed,
    ObservedVolume,
)
from devenv.runtime.docker import observed_container
from devenv.snapshot.model import GoldenFacts
from devenv.state import StateFile
from tests.unit.stacks import FRESH, make_root, observation, options

SOURCE = Path("/src/backend")
KNOWN = MigrationSet(
    source=SOURCE,
    directory=SOURCE / "migrations",
    migrations=(Migration(1, "schema", b"c1", "1_schema.sql"),),
)
HYBRID_URL = "postgres://app:Secret-Pw-1@db.example:5432/app"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(options(make_root(tmp_path)))


def _config(tmp_path: Path, *, compose: str | None = None, **environ: str) -> Config:
    return load_config(options(make_root(tmp_path / "other", compose=compose), **environ))


def running(plan: Plan, *, state: str = "running") -> Observed:
    """The engine as it is after `plan` ran: its containers and volumes."""
    containers = []
    for d in plan.desired.values():
        raw = {
            "Id": f"id-{d.service}",
            "Names": [f"/{d.spec.name}"],
            "State": state,
            "Status": "Exited (137) 1 second ago" if state == "exited" else "Up",
            "Image": d.spec.image,
            "Labels": dict(d.spec.labels),
            "Ports": [{"PublicPort": h} for _, h in d.spec.ports],
        }
        containers.append(observed_container(raw))
    volumes = tuple(
        ObservedVolume(name, dict(labels))
        for d in plan.desired.values()
        for name, labels in d.volumes
    )
    return Observed(tuple(containers), volumes)


def after_first_up(config: Config, plan: Plan) -> Observation:
    """What the next `up` observes: the state saved, ports claimed, containers running."""
    assert plan.stack is not None
    state = StateFile(
        config.options.root / "state.json",
        dict(plan.stack.credentials),
        dict(plan.stack.ports),
        exists=True,
    )
    backend = plan.desired["backend"].image.ref
    return observation(
        config,
        engine=running(plan),
        state=state,
        bucket=True,
        claimed_image=backend,
        mine=tuple(sorted(plan.stack.ports.values())),
        golden=GoldenFacts(saved=True, intact=True),
    )


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return [(s.kind, s.target) for s in plan.steps]


def assert_ordered(plan: Plan) -> None:
    """Every step waits only for steps listed before it: the text order is an execution order."""
    seen: set[str] = set()
    for step in plan.steps:
        assert set(step.after) <= seen, (step, seen)
        assert step.id not in seen
        seen.add(step.id)


def test_fresh_project_lists_every_step_with_its_cause(config: Config) -> None:
    facts = MigrationFacts(known=KNOWN, unread="Postgres is not running yet")
    plan = reconcile(config, observation(config, migrations=facts))
    assert plan.error is None
    assert_ordered(plan)
    assert plan.text().splitlines() == [
        "save-state        state                 generate credentials postgres_password, "
        "storage_access_key, storage_secret_key; remember ports postgres 5432, objectstore "
        "9000, backend 8080",
        "claim-ports       ports                 keep other devenv projects off 5432, 8080, 9000",
        "claim-image       backend               record devenv-standin/backend:src-be0123456789 "
        "as run by project t: no build of its source prunes it",
        "create-volume     t_pgdata              volume missing",
        "create-volume     t_s3data              volume missing",
        "create            postgres              no container yet",
        "start             postgres              new container",
        "wait-ready        postgres              probe SELECT 1 over TCP",
        "create            objectstore           no container yet",
        "start             objectstore           new container",
        "create-bucket     ignition              the object store is not answering yet: create "
        "bucket ignition when it does",
        "wait-ready        objectstore           probe an S3 round trip on the bucket",
        "verify-migrations migrations            Postgres is not running yet: check its "
        "migrations against /src/backend before the backend starts",
        "create            backend               no container yet",
        "start             backend               new container",
        "wait-ready        backend               probe GET /health",
        "seed-user         dev-user              the stack changed: upsert the dev-bypass user "
        "(it logs in as an admin)",
        "snapshot-golden   golden                first healthy up of this project: keep its "
        "state for `devenv reset`",
    ]
    # the golden state is the healthy, seeded stack: taken after every probe and the seed
    assert set(plan.step("snapshot-golden:golden").after) == {
        "wait-ready:postgres",
        "wait-ready:objectstore",
        "wait-ready:backend",
        "seed-user:dev-user",
    }
    start = plan.step("start:backend")
    # service_healthy in compose.yaml: the backend starts once both dependencies answer
    assert set(start.after) == {
        "create:backend",
        "verify-migrations:migrations",
        "wait-ready:postgres",
        "wait-ready:objectstore",
    }
    assert "save-state:state" in plan.step("create:postgres").after
    assert not plan.noop


def test_unchanged_running_stack_is_a_noop(config: Config) -> None:
    first = reconcile(config, observation(config))
    plan = reconcile(config, after_first_up(config, first))
    assert plan.noop, plan.text()
    assert kinds(plan) == [
        ("keep", "postgres"),
        ("wait-ready", "postgres"),
        ("keep", "objectstore"),
        ("wait-ready", "objectstore"),
        ("keep", "backend"),
        ("wait-ready", "backend"),
    ]


def test_one_env_change_recreates_only_that_service_and_names_the_key(
    config: Config, tmp_path: Path
) -> None:
    first = reconcile(config, observation(config))
    seen = after_first_up(config, first)
    text = (config.options.root / "compose" / "compose.yaml").read_text()
    changed = _config(tmp_path, compose=text.replace("RUST_LOG: info", "RUST_LOG: debug"))
    plan = reconcile(changed, replace(seen, state=seen.state))
    steps = {s.target: (s.kind, s.cause) for s in plan.steps if s.kind != "wait-ready"}
    assert steps["backend"] == ("start", "new container")
    assert plan.step("recreate:backend").cause == "config changed: env RUST_LOG"
    assert steps["postgres"] == ("keep", "up to date")
    assert steps["objectstore"] == ("keep", "up to date")
    assert "seed-user:dev-user" in {s.id for s in plan.steps}


def test_image_change_is_named(config: Config) -> None:
    first = reconcile(config, observation(config))
    seen = after_first_up(config, first)
    official = ImageInfo("sha256:official", ("postgres:15.10-bookworm",), {}, {"PG_MAJOR": "15"})
    pulled = replace(seen, images={**seen.images, "postgres:15.10-bookworm": official})
    plan = reconcile(config, pulled)  # the official image is present now: it is preferred
    assert plan.step("recreate:postgres").cause == "config changed: image"
    assert plan.desired["postgres"].spec.image == "postgres:15.10-bookworm"


def test_exited_container_is_started_not_recreated(config: Config) -> None:
    first = reconcile(config, observation(config))
    seen = after_first_up(config, first)
    engine = running(first, state="exited")
    plan = reconcile(config, replace(seen, engine=engine))
    assert plan.step("start:objectstore").cause == "container exited with code 137"
    assert "create:objectstore" not in {s.id for s in plan.steps}


def test_missing_image_is_built_before_the_container_is_created(config: Config) -> None:
    plan = reconcile(config, observation(config, images=False))
    assert plan.step("build-image:backend").cause.startswith(
        "image devenv-standin/backend:src-be0123456789 missing: build recipe backend"
    )
    assert "build-image:backend" in plan.step("create:backend").after
    assert_ordered(plan)


def test_service_now_external_is_removed_with_cause(config: Config, tmp_path: Path) -> None:
    first = reconcile(config, observation(config))
    hybrid = _config(tmp_path, DEVENV_PROFILE="hybrid", DEVENV_HYBRID_DATABASE_URL=HYBRID_URL)
    plan = reconcile(hybrid, after_first_up(config, first))
    assert plan.step("remove:postgres").cause == (
        "now bound to an external provider by profile hybrid"
    )


def test_external_provider_is_verified_first_and_its_dependents_wait(
    tmp_path: Path,
) -> None:
    hybrid = _config(tmp_path, DEVENV_PROFILE="hybrid", DEVENV_HYBRID_DATABASE_URL=HYBRID_URL)
    facts = MigrationFacts(known=KNOWN, unread="connection refused")
    plan = reconcile(hybrid, observation(hybrid, migrations=facts))
    assert_ordered(plan)
    first_local = next(i for i, s in enumerate(plan.steps) if s.kind == "create")
    verify = plan.step("verify-external:postgres")
    assert plan.steps.index(verify) < first_local
    assert verify.after == ()
    assert verify.cause == "external postgres: probe it first (read-only: protected provider)"
    assert "verify-external:postgres" in plan.step("start:backend").after
    migrations = plan.step("verify-migrations:migrations")
    assert migrations.cause.startswith("the external Postgres did not answer")
    assert migrations.after == ("verify-external:postgres",)
    assert "seed-user:dev-user" not in {s.id for s in plan.steps}  # bypass is off


def test_protected_store_is_written_only_when_told(tmp_path: Path) -> None:
    env = {
        "DEVENV_OBJECTSTORE_PROVIDER": "external",
        "DEVENV_OBJECTSTORE_ENDPOINT": "https://store.example",
        "DEVENV_OBJECTSTORE_BUCKET": "real",
        "DEVENV_OBJECTSTORE_REGION": "auto",
        "DEVENV_OBJECTSTORE_ACCESS_KEY_ID": "AKID",
        "DEVENV_OBJECTSTORE_SECRET_ACCESS_KEY": "secret-key-1",
        "DEVENV_AUTH_DEV_BYPASS": "false",
        "DEVENV_SEED_ENABLED": "false",
    }
    store = _config(tmp_path, **env)
    plan = reconcile(store, observation(store, bucket=False))
    assert "create-bucket:real" not in {s.id for s in plan.steps}
    told_env = env | {"DEVENV_SEED_ENABLED": "true", "DEVENV_SEED_ALLOW_PROTECTED": "true"}
    told_store = _config(tmp_path / "told", **told_env)
    told = reconcile(told_store, observation(told_store, bucket=False))
    bucket = told.step("create-bucket:real")
    assert bucket.cause == "bucket real does not exist (seeding the external store)"
    assert told.step("verify-external:objectstore").after == (bucket.id,)


def test_service_started_condition_waits_for_the_start_only(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "compose" / "compose.yaml").read_text()
    started = text.replace("condition: service_healthy", "condition: service_started")
    config = _config(tmp_path, compose=started)
    plan = reconcile(config, observation(config))
    after = set(plan.step("start:backend").after)
    assert {"start:postgres", "start:objectstore"} <= after
    assert not after & {"wait-ready:postgres", "wait-ready:objectstore"}


def test_postgres_major_version_change_is_refused_with_the_plan(config: Config) -> None:
    labels = dict(volume_labels("t", "pgdata", {LABEL_PG_MAJOR: "16"}))
    seen = observation(config, engine=Observed((), (ObservedVolume("t_pgdata", labels),)))
    plan = reconcile(config, seen)
    assert isinstance(plan.error, RefusedError)
    assert "holds a Postgres 16 data directory" in plan.error.message
    assert "create:postgres" in {s.id for s in plan.steps}  # what it would have done
    same = dict(volume_labels("t", "pgdata", {LABEL_PG_MAJOR: "15"}))
    kept = reconcile(
        config, observation(config, engine=Observed((), (ObservedVolume("t_pgdata", same),)))
    )
    assert kept.error is None
    assert "create-volume:t_pgdata" not in {s.id for s in kept.steps}


def test_readable_database_of_another_source_is_refused_at_planning(config: Config) -> None:
    foreign = MigrationFacts(known=KNOWN, applied=(AppliedMigration(7, "x", True, b""),))
    plan = reconcile(config, observation(config, migrations=foreign))
    assert isinstance(plan.error, RefusedError)
    assert "not in the source: 7" in plan.error.message
    ours = MigrationFacts(known=KNOWN, applied=(AppliedMigration(1, "schema", True, b"c1"),))
    plan = reconcile(config, observation(config, migrations=ours))
    assert plan.error is None
    assert "verify-migrations:migrations" not in {s.id for s in plan.steps}


def test_kept_backend_needs_no_deferred_check(config: Config) -> None:
    first = reconcile(config, observation(config))
    seen = replace(after_first_up(config, first), migrations=MigrationFacts(known=KNOWN))
    assert "verify-migrations:migrations" not in {s.id for s in reconcile(config, seen).steps}


def test_bypass_beside_a_protected_provider_is_a_refusal(config: Config) -> None:
    bindings = dict(config.profile.bindings)
    bindings["postgres"] = replace(bindings["postgres"], provider="external", protected=True,
                                   settings={"url": HYBRID_URL})  # fmt: skip
    unsafe = replace(config, profile=replace(config.profile, bindings=bindings, dev_bypass=True))
    plan = reconcile(unsafe, observation(unsafe))
    assert isinstance(plan.error, RefusedError)
    assert "dev auth bypass" in plan.error.message


def test_taken_port_under_strict_ports_is_the_plan_s_error(config: Config) -> None:
    seen = observation(config, free=False)
    assert reconcile(config, seen).error is None  # falls back to a spare port
    plan = reconcile(config, seen, strict_ports=True)
    assert isinstance(plan.error, PortConflictError)


def test_an_open_state_file_is_made_private(config: Config) -> None:
    first = reconcile(config, observation(config))
    seen = after_first_up(config, first)
    assert seen.state is not None
    lax = replace(seen, state=replace(seen.state, private=False))
    assert reconcile(config, lax).step("save-state:state").cause == (
        "make the file private (mode 0600)"
    )


def test_labels_carry_a_hash_but_no_secret_values(config: Config) -> None:
    plan = reconcile(config, observation(config))
    labels = dict(plan.desired["postgres"].spec.labels)
    assert len(labels[LABEL_HASH]) == 12
    assert labels["io.devenv.project"] == "t"
    assert FRESH["postgres_password"] in dict(plan.desired["postgres"].spec.environment).values()
    assert FRESH["postgres_password"] not in "".join(labels.values())


def test_restart_plan_restarts_then_waits(config: Config) -> None:
    first = reconcile(config, observation(config))
    assert first.stack is not None
    plan = plan_restart(first.stack, running(first), "backend")
    assert plan.text().splitlines() == [
        "restart           backend               asked to restart",
        "wait-ready        backend               probe it again",
    ]
    missing = plan_restart(first.stack, Observed(), "backend")
    assert isinstance(missing.error, RefusedError)


@pytest.mark.parametrize(
    ("facts", "cause"),
    [
        (GoldenFacts(), "first healthy up of this project"),
        (GoldenFacts(saved=True, intact=False), "the golden snapshot's database is gone"),
        (GoldenFacts(saved=True, unreadable="its metadata is unreadable"), "retake the golden"),
        (GoldenFacts(saved=True, intact=True), None),
        (GoldenFacts(saved=True), None),  # Postgres not asked: its volume is kept, so is it
    ],
)
def test_golden_snapshot_is_planned_from_the_observation(
    config: Config, facts: GoldenFacts, cause: str | None
) -> None:
    first = reconcile(config, observation(config))
    plan = reconcile(config, replace(after_first_up(config, first), golden=facts))
    golden = [s for s in plan.steps if s.kind == "snapshot-golden"]
    if cause is None:
        assert golden == []
        assert plan.noop
        return
    assert [s.target for s in golden] == ["golden"]
    assert cause in golden[0].cause
    assert not plan.noop  # it writes: a snapshot database and the store
    assert golden[0].after == ("wait-ready:postgres", "wait-ready:objectstore",
                               "wait-ready:backend")  # fmt: skip


def test_a_new_data_volume_retakes_the_golden_snapshot(config: Config) -> None:
    """The volumes were removed behind devenv's back: the golden database went with them."""
    first = reconcile(config, observation(config))
    seen = after_first_up(config, first)
    engine = replace(seen.engine, containers=(), volumes=())
    plan = reconcile(config, replace(seen, engine=engine, golden=GoldenFacts(saved=True)))
    cause = plan.step("snapshot-golden:golden").cause
    assert cause == "volume t_pgdata is new; the golden snapshot's database went with the old one"


def test_external_data_is_never_planned_into_a_golden_snapshot(tmp_path: Path) -> None:
    config = _config(tmp_path, DEVENV_PROFILE="hybrid", DEVENV_HYBRID_DATABASE_URL=HYBRID_URL)
    plan = reconcile(config, observation(config))
    assert "snapshot-golden" not in [s.kind for s in plan.steps]
