"""The planner is pure: desired specs + one observed snapshot -> steps with causes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devenv.errors import RefusedError
from devenv.plan import Desired, ImageChoice, reconcile, volume_labels, with_labels
from devenv.runtime.base import (
    LABEL_HASH,
    LABEL_PG_MAJOR,
    ContainerSpec,
    Observed,
    ObservedContainer,
    ObservedVolume,
)


def _spec(service: str, **env: str) -> ContainerSpec:
    return ContainerSpec(
        project="p",
        service=service,
        name=f"p-{service}",
        image=f"img/{service}",
        image_id="",
        environment=tuple(sorted(env.items())),
        command=None,
        ports=((5432, 5432),),
        mounts=(),
        network_mode=None,
        user=None,
    )


def _desired(service: str, *, present: bool = True, identity: str = "id1", **env: str) -> Desired:
    image = ImageChoice(ref=f"img/{service}", identity=identity, present=present, recipe="r")
    return Desired(service=service, spec=with_labels(_spec(service, **env), identity), image=image)


def _observed_from(d: Desired, state: str = "running") -> ObservedContainer:
    import json

    labels = dict(d.spec.labels)
    digest = json.loads(labels["io.devenv.config-digest"])
    return ObservedContainer(
        id=f"id-{d.service}",
        name=d.spec.name,
        service=d.service,
        state=state,
        config_hash=labels[LABEL_HASH],
        image=d.spec.image,
        exit_code=137 if state == "exited" else 0,
        digest=tuple(sorted(digest.items())),
    )


def test_fresh_project_creates_everything() -> None:
    plan = reconcile([_desired("postgres"), _desired("backend")], Observed((), ()))
    assert plan.text().splitlines() == [
        "create   postgres              no container yet",
        "create   backend               no container yet",
    ]
    assert not plan.noop


def test_unchanged_running_stack_is_a_noop() -> None:
    ds = [_desired("postgres", A="1"), _desired("backend", B="2")]
    observed = Observed(tuple(_observed_from(d) for d in ds), ())
    plan = reconcile(ds, observed)
    assert plan.noop
    assert {s.kind for s in plan.steps} == {"keep"}


def test_one_env_change_recreates_only_that_service_and_names_the_key() -> None:
    old = [_desired("postgres", A="1"), _desired("backend", DATABASE_URL="x", RUST_LOG="info")]
    observed = Observed(tuple(_observed_from(d) for d in old), ())
    new = [old[0], _desired("backend", DATABASE_URL="y", RUST_LOG="info")]
    plan = reconcile(new, observed)
    assert [(s.kind, s.target) for s in plan.steps] == [
        ("keep", "postgres"),
        ("recreate", "backend"),
    ]
    assert plan.steps[1].cause == "config changed: env DATABASE_URL"


def test_image_change_is_named() -> None:
    old = _desired("postgres", identity="a")
    plan = reconcile([_desired("postgres", identity="b")], Observed((_observed_from(old),), ()))
    assert plan.steps[0].cause == "config changed: image"


def test_exited_container_is_started_not_recreated() -> None:
    d = _desired("objectstore")
    plan = reconcile([d], Observed((_observed_from(d, state="exited"),), ()))
    assert plan.steps[0].kind == "start"
    assert plan.steps[0].cause == "container exited with code 137"


def test_missing_image_is_built_first() -> None:
    plan = reconcile([_desired("backend", present=False)], Observed((), ()))
    assert [s.kind for s in plan.steps] == ["build", "create"]
    assert "missing" in plan.steps[0].cause


def test_service_now_external_is_removed_with_cause() -> None:
    d = _desired("postgres")
    plan = reconcile([], Observed((_observed_from(d),), ()), removed_cause={"postgres": "external"})
    assert [(s.kind, s.target, s.cause) for s in plan.steps] == [("remove", "postgres", "external")]


def test_postgres_major_version_change_is_refused() -> None:
    d = _desired("postgres")
    d = replace(d, volumes=(("p_pgdata", volume_labels("p", "pgdata", {LABEL_PG_MAJOR: "16"})),))
    vol = ObservedVolume("p_pgdata", dict(volume_labels("p", "pgdata", {LABEL_PG_MAJOR: "15"})))
    with pytest.raises(RefusedError, match="Postgres 15 data directory"):
        reconcile([d], Observed((), (vol,)))


def test_same_major_version_keeps_the_volume() -> None:
    d = _desired("postgres")
    d = replace(d, volumes=(("p_pgdata", volume_labels("p", "pgdata", {LABEL_PG_MAJOR: "15"})),))
    vol = ObservedVolume("p_pgdata", dict(volume_labels("p", "pgdata", {LABEL_PG_MAJOR: "15"})))
    plan = reconcile([d], Observed((), (vol,)))
    assert [s.kind for s in plan.steps] == ["create"]


def test_labels_carry_project_service_and_hash_without_secret_values() -> None:
    spec = with_labels(_spec("postgres", POSTGRES_PASSWORD="hunter2-secret"), "img")
    labels = dict(spec.labels)
    assert labels["io.devenv.project"] == "p"
    assert labels["io.devenv.service"] == "postgres"
    assert len(labels[LABEL_HASH]) == 12
    assert "hunter2-secret" not in "".join(labels.values())
