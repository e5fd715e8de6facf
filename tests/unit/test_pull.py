"""Present, else pulled, else built: the pure rules (pull policy -> plan, fallback causes,
progress lines) and `up` on the fake engine with a registry that answers or does not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from devenv import app
from devenv.config.load import Config, load_config
from devenv.errors import ConfigError, ImageError, RefusedError
from devenv.images.acquire import check_pg_major, pull
from devenv.images.choice import (
    ROOTLESS_HINT,
    BaseChoice,
    HostFacts,
    base_method,
    choose,
    choose_base,
)
from devenv.images.identity import BASE_TAG, SLIM
from devenv.images.registry import (
    PullProgress,
    image_identity,
    pg_major_from_tag,
    pulled_line,
    registry_of,
    repository_of,
    short_error,
    verdict,
)
from devenv.model import ImageChoice, PullPolicy
from devenv.observe import Observation
from devenv.plan import Plan, reconcile
from devenv.runtime.base import (
    LABEL_PG_MAJOR,
    LABEL_RECIPE_HASH,
    ImageInfo,
    Observed,
    ObservedVolume,
    RegistryAnswer,
)
from devenv.runtime.fake import FakeRuntime
from tests.unit.stacks import IDENTITIES, fakes, make_root, observation, options

POSTGRES = "postgres:15.10-bookworm"
MINIO = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
NO_HOST = (
    'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on '
    "10.255.255.53:53: no such host"
)
DOWN = RegistryAnswer(POSTGRES, None, NO_HOST, 500)


def ok(ref: str, digest: str = "sha256:feed") -> RegistryAnswer:
    return RegistryAnswer(ref, digest, "", 200)


def pulled(ref: str, digest: str = "sha256:feed", **env: str) -> ImageInfo:
    repository = repository_of(ref)
    return ImageInfo(f"sha256:id-{ref}", (ref,), {}, env, digests=(f"{repository}@{digest}",))


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(options(make_root(tmp_path / "root")))


# --- registries ------------------------------------------------------------------------------


def test_references_name_their_registry_and_repository() -> None:
    assert registry_of(POSTGRES) == "docker.io"
    assert registry_of(MINIO) == "docker.io"
    assert registry_of("ghcr.io/acme/api:1") == "ghcr.io"
    assert registry_of("localhost/api:1") == "localhost"
    assert registry_of("10.0.0.1:5000/api") == "10.0.0.1:5000"
    assert repository_of(POSTGRES) == "postgres"
    assert repository_of("host:5000/a/b:1") == "host:5000/a/b"
    assert repository_of("host:5000/a/b") == "host:5000/a/b"
    assert repository_of("a/b@sha256:00") == "a/b"


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        (NO_HOST, 500, "unreachable"),
        ('Get "http://localhost:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 500,
         "unreachable"),
        ("did not answer within 15 s", None, "unreachable"),
        ("manifest unknown: manifest unknown", 404, "missing"),
        ("errors: denied: requested access to the resource is denied", 500, "denied"),
        ("unauthorized: authentication required", 401, "denied"),
        ("something else broke", 500, "error"),
    ],
)  # fmt: skip
def test_a_failed_lookup_says_why(error: str, status: int | None, expected: str) -> None:
    assert verdict(RegistryAnswer("x:1", None, error, status)) == expected


def test_the_error_is_shortened_to_the_engine_s_words() -> None:
    assert short_error(DOWN) == "lookup registry-1.docker.io on 10.255.255.53:53: no such host"


def test_postgres_major_comes_from_the_official_tag() -> None:
    assert pg_major_from_tag(POSTGRES) == "15"
    assert pg_major_from_tag("postgres:16") == "16"
    assert pg_major_from_tag("postgres:16-alpine") == "16"
    assert pg_major_from_tag("registry:5000/postgres:17.2") == "17"
    assert pg_major_from_tag("postgres:latest") is None
    assert pg_major_from_tag("postgres") is None


def test_a_pulled_image_is_known_by_its_digest_before_and_after_the_pull() -> None:
    digest = "sha256:97da267d0c02794320451372c6f3ca83baa434426e2e38cf6c4544812649c120"
    after = pulled(POSTGRES, digest)
    assert image_identity(after, POSTGRES) == digest
    hub = replace(after, digests=(f"docker.io/library/postgres@{digest}",))
    assert image_identity(hub, POSTGRES) == digest
    built = ImageInfo("sha256:local", (POSTGRES,), {}, {})  # loaded or built here: its id
    assert image_identity(built, POSTGRES) == "sha256:local"
    other = replace(after, digests=("mirror/postgres@sha256:other",))
    assert image_identity(other, POSTGRES) == after.id


# --- progress ------------------------------------------------------------------------------


def _events() -> list[dict[str, object]]:
    return [
        {"status": "Pulling from library/postgres", "id": "15.10-bookworm"},
        {"status": "Already exists", "progressDetail": {}, "id": "a"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "b"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "c"},
        {"status": "Downloading", "progressDetail": {"current": 5_000_000, "total": 40_000_000},
         "id": "b"},
        {"status": "Downloading", "progressDetail": {"current": 1_000_000, "total": 2_500_000},
         "id": "c"},
    ]  # fmt: skip


def test_progress_counts_layers_and_megabytes() -> None:
    state = PullProgress()
    for event in _events():
        state.feed(event)
    assert state.line() == "1/3 layers, 6.0/42.5 MB"
    state.feed({"status": "Download complete", "progressDetail": {}, "id": "c"})
    state.feed({"status": "Pull complete", "progressDetail": {}, "id": "c"})
    assert state.line() == "2/3 layers, 7.5/42.5 MB"
    state.feed({"status": "Pull complete", "progressDetail": {}, "id": "b"})
    assert state.line() == "3/3 layers, 42.5/42.5 MB"
    assert pulled_line("postgres", POSTGRES, state, 12.34) == (
        "postgres  pulled postgres:15.10-bookworm (42.5 MB in 2 of 3 layers, 12.3 s)"
    )
    fresh = PullProgress()
    for event in _events()[2:]:
        fresh.feed(event)
    assert pulled_line("objectstore", MINIO, fresh, 3.0).endswith("(6.0 MB, 3.0 s)")
    fresh.feed({"error": "unexpected EOF", "errorDetail": {"message": "unexpected EOF"}})
    assert fresh.error == "unexpected EOF"


def test_a_pull_says_its_progress_every_few_seconds_then_one_line() -> None:
    runtime = FakeRuntime()
    runtime.registry[POSTGRES] = pulled(POSTGRES)
    said: list[str] = []
    # start, three events (the second one 5 s in says the progress), the end
    now = iter([0.0, 1.0, 5.0, 5.0, 6.0, 10.0])
    info = pull(
        runtime, POSTGRES, label="postgres", progress=said.append, stop=lambda: False,
        clock=lambda: next(now),
    )  # fmt: skip
    assert info.id == pulled(POSTGRES).id
    assert said[0] == "postgres  pulling postgres:15.10-bookworm ..."
    assert said[1] == "postgres  pulling postgres:15.10-bookworm: 0/1 layers, 1.0/2.0 MB"
    assert said[-1] == "postgres  pulled postgres:15.10-bookworm (2.0 MB, 10.0 s)"
    assert len(said) == 3


# --- one service's image -------------------------------------------------------------------


def _choose(
    images: Mapping[str, ImageInfo | None],
    registry: Mapping[str, RegistryAnswer],
    policy: PullPolicy = "missing",
    **more: str,
) -> ImageChoice:
    return choose(
        images,
        ref=POSTGRES,
        standin="devenv-standin/postgres:15",
        recipe="postgres",
        identity="pg-recipe",
        policy=policy,
        registry=registry,
        base=BaseChoice(BASE_TAG, present=True),
        current_image=more.get("current"),
    )


STANDIN = ImageInfo("sha256:standin", ("devenv-standin/postgres:15",),
                    {LABEL_RECIPE_HASH: "pg-recipe"}, {"PG_MAJOR": "15"})  # fmt: skip
STALE = replace(STANDIN, labels={LABEL_RECIPE_HASH: "old-recipe"})


def test_present_else_pulled_else_built() -> None:
    present = _choose({POSTGRES: pulled(POSTGRES, PG_MAJOR="15")}, {})
    assert (present.ref, present.present, present.identity) == (POSTGRES, True, "sha256:feed")
    assert present.pg_major == "15"

    standin = _choose({"devenv-standin/postgres:15": STANDIN}, {})
    assert (standin.ref, standin.present, standin.why) == (
        "devenv-standin/postgres:15", True, "stand-in devenv-standin/postgres:15 present",
    )  # fmt: skip

    pulling = _choose({}, {POSTGRES: ok(POSTGRES)})
    assert (pulling.ref, pulling.pull, pulling.present) == (POSTGRES, True, False)
    assert pulling.identity == "sha256:feed"  # what image_identity says once it is pulled
    assert pulling.pg_major == "15"  # from the tag, checked against PG_MAJOR after the pull
    assert pulling.why == "postgres:15.10-bookworm missing"

    built = _choose({}, {POSTGRES: DOWN})
    assert (built.ref, built.pull, built.present, built.recipe) == (
        "devenv-standin/postgres:15", False, False, "postgres",
    )  # fmt: skip
    assert built.why == (
        "registry docker.io unreachable: building the stand-in devenv-standin/postgres:15"
    )
    missing = _choose({}, {POSTGRES: RegistryAnswer(POSTGRES, None, "manifest unknown", 404)})
    assert missing.why.startswith("postgres:15.10-bookworm is not in registry docker.io")


def test_pull_policies() -> None:
    nothing: dict[str, ImageInfo | None] = {}
    assert _choose(nothing, {}, "never").why == (
        "pull policy never: building the stand-in devenv-standin/postgres:15"
    )
    both = {POSTGRES: pulled(POSTGRES), "devenv-standin/postgres:15": STANDIN}
    assert _choose(both, {}, "build").ref == "devenv-standin/postgres:15"  # never the image
    assert _choose(both, {}, "never").ref == POSTGRES  # present counts under never
    same = _choose(both, {POSTGRES: ok(POSTGRES)}, "always")
    assert (same.ref, same.present, same.why) == (
        POSTGRES, True, "postgres:15.10-bookworm is what its registry has",
    )  # fmt: skip
    newer = _choose(both, {POSTGRES: ok(POSTGRES, "sha256:newer")}, "always")
    assert (newer.pull, newer.identity) == (True, "sha256:newer")
    assert newer.why == "postgres:15.10-bookworm is older than its registry's"
    offline = _choose(both, {POSTGRES: DOWN}, "always")
    assert (offline.ref, offline.present) == (POSTGRES, True)
    assert offline.why == "registry docker.io unreachable: keeping the present " + POSTGRES


def test_a_standin_in_use_is_rebuilt_not_swapped_under_its_data() -> None:
    stale = {"devenv-standin/postgres:15": STALE}
    kept = _choose(stale, {POSTGRES: ok(POSTGRES)}, current="devenv-standin/postgres:15")
    assert (kept.ref, kept.pull, kept.present) == ("devenv-standin/postgres:15", False, False)
    assert "whose recipe changed: rebuild it" in kept.why
    assert _choose(stale, {POSTGRES: ok(POSTGRES)}).pull  # no container on it: pulled


# --- the base ------------------------------------------------------------------------------


def test_the_base_is_slim_when_present_or_pullable_else_debootstrapped() -> None:
    root = HostFacts(root=True, tools=frozenset({"debootstrap"}))
    slim = ImageInfo("sha256:slim", (SLIM,), {}, {})
    assert choose_base({SLIM: slim}, {}, policy="missing", host=root).ref == SLIM
    pulling = choose_base({}, {SLIM: ok(SLIM)}, policy="missing", host=root)
    assert (pulling.ref, pulling.pull, pulling.why) == (SLIM, True, f"{SLIM} missing")
    never = choose_base({}, {SLIM: ok(SLIM)}, policy="never", host=root)
    assert (never.ref, never.method) == (BASE_TAG, "debootstrap")
    offline = choose_base({}, {SLIM: replace(DOWN, ref=SLIM)}, policy="missing", host=root)
    assert (offline.ref, offline.present, offline.method) == (BASE_TAG, False, "debootstrap")
    assert offline.why == "registry docker.io unreachable"
    built = ImageInfo("sha256:base", (BASE_TAG,), {}, {})
    assert choose_base({BASE_TAG: built}, {}, policy="never", host=root).present


def test_the_offline_base_without_root_is_rootless_or_one_line_that_works() -> None:
    assert base_method(HostFacts(root=True, tools=frozenset({"debootstrap"}))) == (
        "debootstrap", "",
    )  # fmt: skip
    assert base_method(HostFacts(root=True))[1].startswith("install debootstrap")
    tools = frozenset({"mmdebstrap", "newuidmap", "newgidmap"})
    assert base_method(HostFacts(root=False, tools=tools, subids=True)) == (
        "mmdebstrap --mode=unshare", "",
    )  # fmt: skip
    for host in (
        HostFacts(root=False),
        HostFacts(root=False, tools=tools),  # no subordinate ids for this user
        HostFacts(root=False, tools=frozenset({"debootstrap"}), subids=True),
    ):
        assert base_method(host) == (None, ROOTLESS_HINT)
    assert "sudo apt-get install mmdebstrap uidmap" in ROOTLESS_HINT
    assert "usermod --add-subuids" in ROOTLESS_HINT
    assert "sudo .venv/bin/devenv" not in ROOTLESS_HINT  # sudo's PATH has no cargo


# --- the plan ------------------------------------------------------------------------------


def _fresh(config: Config, **facts: object) -> Observation:
    """A fresh project: no stand-in built, no compose image, the backend to build."""
    seen = observation(config, images=False)
    return replace(seen, **facts)  # type: ignore[arg-type]


def _images(plan: Plan) -> list[str]:
    return [
        line
        for line in plan.text().splitlines()
        if line.split()[0] in ("pull-image", "build-image")
    ]


def test_online_the_plan_pulls_the_official_images_and_the_base(config: Config) -> None:
    registry = {POSTGRES: ok(POSTGRES), MINIO: ok(MINIO), SLIM: ok(SLIM)}
    plan = reconcile(config, _fresh(config, registry=registry))
    assert plan.error is None
    assert _images(plan) == [
        "pull-image        postgres              postgres:15.10-bookworm missing: pull it "
        "(offline: `--pull never` builds devenv-standin/postgres:15 instead)",
        "pull-image        objectstore           minio/minio:RELEASE.2025-09-07T16-13-09Z missing: "
        "pull it (offline: `--pull never` builds devenv-standin/objectstore:1 instead)",
        "pull-image        base                  debian:bookworm-slim missing: pull it (the "
        "recipes build on it)",
        "build-image       backend               image devenv-standin/backend:src-be0123456789 "
        "missing: build recipe backend",
    ]
    assert plan.step("build-image:backend").after == ("pull-image:base",)
    assert "pull-image:postgres" in plan.step("create:postgres").after
    assert plan.desired["postgres"].spec.image == POSTGRES
    assert dict(plan.desired["postgres"].volumes[0][1])[LABEL_PG_MAJOR] == "15"
    assert plan.desired["backend"].image.base == SLIM
    assert plan.notes == ()


def test_offline_the_plan_builds_the_standins_and_says_why_once(config: Config) -> None:
    answers = {ref: replace(DOWN, ref=ref) for ref in (POSTGRES, MINIO, SLIM)}
    host = HostFacts(root=True, tools=frozenset({"debootstrap", "cargo"}))
    plan = reconcile(config, _fresh(config, registry=answers, host=host))
    assert plan.error is None
    assert _images(plan) == [
        "build-image       base                  registry docker.io unreachable: build "
        "devenv-standin/bookworm-base:1 with debootstrap",
        "build-image       postgres              registry docker.io unreachable: building the "
        "stand-in devenv-standin/postgres:15 (recipe postgres)",
        "build-image       objectstore           registry docker.io unreachable: building the "
        "stand-in devenv-standin/objectstore:1 (recipe objectstore)",
        "build-image       backend               image devenv-standin/backend:src-be0123456789 "
        "missing: build recipe backend",
    ]
    for service in ("postgres", "objectstore", "backend"):
        assert plan.step(f"build-image:{service}").after == ("build-image:base",)
    assert plan.notes[0] == (
        "registry docker.io unreachable (lookup registry-1.docker.io on 10.255.255.53:53: no "
        "such host): using what the engine has and the local stand-in recipes (`--pull never` "
        "skips asking)"
    )
    assert sum("unreachable (" in note for note in plan.notes) == 1


def test_pull_never_builds_without_asking(tmp_path: Path) -> None:
    config = load_config(replace(options(make_root(tmp_path / "root")), pull="never"))
    host = HostFacts(root=True, tools=frozenset({"debootstrap", "cargo"}))
    plan = reconcile(config, _fresh(config, host=host))
    assert plan.step("build-image:postgres").cause == (
        "pull policy never: building the stand-in devenv-standin/postgres:15 (recipe postgres)"
    )
    assert plan.step("build-image:base").cause == (
        "--pull never: build devenv-standin/bookworm-base:1 with debootstrap"
    )


def test_a_user_who_cannot_build_the_base_is_told_what_to_do_before_anything(
    config: Config,
) -> None:
    answers = {ref: replace(DOWN, ref=ref) for ref in (POSTGRES, MINIO, SLIM)}
    plan = reconcile(config, _fresh(config, registry=answers, host=HostFacts(root=False)))
    assert isinstance(plan.error, ImageError)
    assert plan.error.hint == ROOTLESS_HINT
    line = plan.error.one_line()
    assert "\n" not in line
    assert line.startswith(
        "Image error: the base image devenv-standin/bookworm-base:1 must be built on this "
        "machine (registry docker.io unreachable) and this user cannot build it"
    )


def test_an_objectstore_standin_without_cargo_is_refused_with_the_fix(tmp_path: Path) -> None:
    config = load_config(replace(options(make_root(tmp_path / "root")), pull="never"))
    host = HostFacts(root=False, tools=frozenset({"mmdebstrap", "newuidmap", "newgidmap"}),
                     subids=True)  # fmt: skip
    plan = reconcile(config, _fresh(config, host=host))
    assert isinstance(plan.error, ImageError)
    assert "this machine has no cargo" in plan.error.message
    assert plan.error.hint == (
        "install Rust (https://rustup.rs), then run again, or let the registry serve "
        f"{MINIO} (pull policy missing)"
    )
    with_server = replace(host, s3s_built=True)
    assert reconcile(config, _fresh(config, host=with_server)).error is None


def test_compose_pull_policy_is_honoured_and_overridden_by_the_flag(tmp_path: Path) -> None:
    text = (make_root(tmp_path / "a") / "compose" / "compose.yaml").read_text()
    edited = text.replace(
        "    image: minio/minio:RELEASE.2025-09-07T16-13-09Z\n",
        "    image: minio/minio:RELEASE.2025-09-07T16-13-09Z\n    pull_policy: never\n",
    )
    root = make_root(tmp_path / "b", compose=edited)
    config = load_config(options(root))
    registry = {POSTGRES: ok(POSTGRES), MINIO: ok(MINIO), SLIM: ok(SLIM)}
    host = HostFacts(root=True, tools=frozenset({"debootstrap", "cargo"}))
    plan = reconcile(config, _fresh(config, registry=registry, host=host))
    assert plan.step("pull-image:postgres")
    assert plan.step("build-image:objectstore").cause.startswith("pull policy never: building")
    flagged = load_config(replace(options(root), pull="always"))
    plan = reconcile(flagged, _fresh(flagged, registry=registry, host=host))
    assert {s.id for s in plan.steps} >= {"pull-image:postgres", "pull-image:objectstore"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("daily", "devenv does not pull on a schedule"),
        ("every_12h", "devenv does not pull on a schedule"),
        ("sometimes", "is not one of missing, always, never, build"),
    ],
)
def test_bad_pull_policies_name_the_key(tmp_path: Path, value: str, error: str) -> None:
    text = (make_root(tmp_path / "a") / "compose" / "compose.yaml").read_text()
    edited = text.replace(
        "    image: postgres:15.10-bookworm\n",
        f"    image: postgres:15.10-bookworm\n    pull_policy: {value}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(options(make_root(tmp_path / "b", compose=edited)))
    assert info.value.key == "services → postgres → pull_policy"
    assert error in info.value.message


def test_if_not_present_is_compose_s_missing(tmp_path: Path) -> None:
    text = (make_root(tmp_path / "a") / "compose" / "compose.yaml").read_text()
    edited = text.replace(
        "    image: postgres:15.10-bookworm\n",
        "    image: postgres:15.10-bookworm\n    pull_policy: if_not_present\n",
    )
    config = load_config(options(make_root(tmp_path / "b", compose=edited)))
    assert config.service("postgres").pull_policy == "missing"


def test_a_pulled_postgres_is_held_to_the_data_volume_s_major(config: Config) -> None:
    registry = {POSTGRES: ok(POSTGRES), MINIO: ok(MINIO), SLIM: ok(SLIM)}
    volume = ObservedVolume("t_pgdata", {"io.devenv.project": "t", LABEL_PG_MAJOR: "14"})
    plan = reconcile(config, _fresh(config, registry=registry, engine=Observed(volumes=(volume,))))
    assert isinstance(plan.error, RefusedError)
    assert (
        "holds a Postgres 14 data directory but image postgres:15.10-bookworm is Postgres 15"
        in (plan.error.message)
    )
    choice = plan.desired["postgres"].image
    check_pg_major("postgres", choice, pulled(POSTGRES, PG_MAJOR="15"), Observed())  # agrees
    with pytest.raises(RefusedError, match="is Postgres 16 \\(PG_MAJOR\\), not 15"):
        check_pg_major("postgres", choice, pulled(POSTGRES, PG_MAJOR="16"), Observed())


# --- observe and execute on the fakes ------------------------------------------------------


def test_up_asks_the_registry_once_when_it_is_down_and_not_at_all_when_all_is_present(
    tmp_path: Path,
) -> None:
    opts = options(make_root(tmp_path / "root"))
    made = fakes(opts)
    app.up(opts, adapters=made.adapters)
    assert not [line for line in made.journal if line.startswith("lookup ")]
    # nothing built, nothing pulled: the registry (down) is asked once, for all three images
    bare = fakes(opts)
    bare.runtime.images = {BASE_TAG: bare.runtime.images[BASE_TAG]}
    plan = app.plan_up(options(opts.root, "other"), adapters=bare.adapters).plan
    assert [line for line in bare.journal if line.startswith("lookup ")] == [
        "lookup postgres:15.10-bookworm"
    ]
    assert plan.notes[0].startswith("registry docker.io unreachable (lookup registry-1")


def test_up_pulls_what_the_registry_has_and_says_so(tmp_path: Path) -> None:
    opts = options(make_root(tmp_path / "root"))
    made = fakes(opts)
    made.runtime.images = {
        ref: info
        for ref, info in made.runtime.images.items()
        if ref == BASE_TAG or "backend" in ref
    }
    made.runtime.registry = {POSTGRES: pulled(POSTGRES, PG_MAJOR="15"), MINIO: pulled(MINIO)}
    said: list[str] = []
    result = app.up(opts, adapters=made.adapters, progress=said.append)
    assert "pull postgres:15.10-bookworm" in made.journal
    assert f"pull {MINIO}" in made.journal
    assert made.index("pull postgres:15.10-bookworm") < made.index("create postgres")
    assert "postgres  pulled postgres:15.10-bookworm (2.0 MB, " in "\n".join(said)
    statuses = {o.step.id: o.status for o in result.outcomes}
    assert statuses["pull-image:postgres"] == "done"
    # the next up finds them present under the identity the plan gave them: nothing to do
    again = app.up(opts, adapters=made.adapters)
    assert again.noop, again.plan.text()
    assert IDENTITIES  # the fakes' stand-in identities are untouched by pulls


def test_a_profile_s_backend_image_is_pulled_when_missing_else_refused(tmp_path: Path) -> None:
    given = "ghcr.io/acme/ignition-api:1.2"
    config = load_config(options(make_root(tmp_path / "root"), DEVENV_BACKEND_IMAGE=given))
    present = observation(config)  # every stand-in present, the given image not
    registry = {given: ok(given, "sha256:api")}
    plan = reconcile(config, replace(present, registry=registry))
    assert plan.step("pull-image:backend").cause == f"{given} missing: pull it"
    assert plan.desired["backend"].image.identity == "sha256:api"
    down = {given: RegistryAnswer(given, None, "manifest unknown: manifest unknown", 404)}
    refused = reconcile(config, replace(present, registry=down))
    assert isinstance(refused.error, ImageError)
    assert refused.error.message == (
        f"service backend: image {given} is missing, no recipe builds it, and it cannot be "
        f"pulled: {given} is not in registry ghcr.io (manifest unknown)"
    )
