"""Host port choice: remembered, preferred, then a spare; never another project's claim."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.config.load import Config, Options, load_config
from devenv.errors import PortConflictError
from devenv.observe import PortFacts, port_is_free
from devenv.plan import choose_ports
from devenv.runtime.base import Observed, ObservedContainer
from devenv.state import claim_ports, read_port_claims, release_ports
from tests.unit.stacks import make_root

PG = 5432  # the compose file's preferred Postgres port


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Only postgres local: the one port these tests choose."""
    root = make_root(tmp_path)
    environ = {
        "DEVENV_OBJECTSTORE_PROVIDER": "external",
        "DEVENV_OBJECTSTORE_ENDPOINT": "http://127.0.0.1:1",
        "DEVENV_OBJECTSTORE_BUCKET": "b",
        "DEVENV_OBJECTSTORE_REGION": "auto",
        "DEVENV_OBJECTSTORE_ACCESS_KEY_ID": "k",
        "DEVENV_OBJECTSTORE_SECRET_ACCESS_KEY": "s",
        "DEVENV_OBJECTSTORE_PROTECTED": "false",
        "DEVENV_BACKEND_PROVIDER": "external",
        "DEVENV_BACKEND_URL": "http://127.0.0.1:2",
    }
    return load_config(Options(root=root, project="t", environ=environ))


def _choose(
    config: Config,
    facts: PortFacts,
    *,
    remembered: dict[str, int] | None = None,
    engine: Observed | None = None,
    strict: bool = False,
) -> tuple[dict[str, int], list[str], PortConflictError | None]:
    return choose_ports(config, remembered or {}, engine or Observed(), facts, strict=strict)


def test_free_preferred_port_is_used(config: Config) -> None:
    assert _choose(config, PortFacts(free={PG: True})) == ({"postgres": PG}, [], None)


def test_taken_preferred_port_falls_back_to_a_spare_and_says_so(config: Config) -> None:
    chosen, notes, error = _choose(config, PortFacts(free={PG: False}, spare=(40001,)))
    assert (chosen, error) == ({"postgres": 40001}, None)
    assert notes == [f"postgres: port {PG} is taken, using 40001 instead"]


def test_strict_ports_names_the_container_holding_it(config: Config) -> None:
    engine = Observed(published={PG: "other-postgres"})
    _, _, error = _choose(
        config, PortFacts(free={PG: False}, spare=(1,)), engine=engine, strict=True
    )
    assert isinstance(error, PortConflictError)
    assert error.message == f"service postgres: host port {PG} is held by container other-postgres"


def test_remembered_port_wins_and_ours_counts_as_free(config: Config) -> None:
    facts = PortFacts(free={40002: True, PG: True})
    assert _choose(config, facts, remembered={"postgres": 40002})[0] == {"postgres": 40002}
    running = ObservedContainer("id", "t-postgres", "postgres", "running", "h", "img")
    held = PortFacts(free={40002: False, PG: True})
    chosen = _choose(config, held, remembered={"postgres": 40002}, engine=Observed((running,)))
    assert chosen[0] == {"postgres": 40002}


def test_another_projects_claim_is_never_chosen(config: Config) -> None:
    facts = PortFacts(free={PG: True}, spare=(40003,), claimed=frozenset({PG}))
    chosen, notes, _ = _choose(config, facts)
    assert chosen == {"postgres": 40003}
    assert notes


@pytest.fixture
def held() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_listening_port_is_not_free(held: int) -> None:
    assert not port_is_free(held)


def test_claims_round_trip_and_ignore_own_and_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path))
    assert claim_ports("a", [5432, 8080]) == set()
    assert read_port_claims("b").others() == {5432, 8080}
    assert claim_ports("b", [5433, 8080]) == {8080}  # taken meanwhile: nothing recorded
    assert claim_ports("b", [5433]) == set()
    claims = read_port_claims("a")
    assert claims.others() == {5433}
    assert claims.others(now=10**12) == set()  # a week-old claim is advice no longer
    assert claims.mine()[0] == (5432, 8080)
    release_ports("a")
    assert read_port_claims("b").others() == set()
