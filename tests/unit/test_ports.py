"""Host port choice: remembered, preferred, then free; never another project's claim."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.config.compose import load_project
from devenv.errors import PortConflictError
from devenv.model import Project
from devenv.stack import choose_ports
from devenv.state import PortClaims, State, port_claims

REPO = Path(__file__).resolve().parents[2]


def _project(pg_port: int) -> Project:
    return load_project(REPO, project_name="t", variables={"POSTGRES_PORT": str(pg_port)})


@pytest.fixture
def held() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _choose(project: Project, state: State, **kw: object) -> tuple[dict[str, int], list[str]]:
    notes: list[str] = []
    chosen = choose_ports(
        project,
        state,
        None,
        local=lambda s: s == "postgres",
        strict=bool(kw.get("strict", False)),
        holder=lambda _p: None,
        notes=notes,
        claimed=kw.get("claimed", ()),  # type: ignore[arg-type]
    )
    return chosen, notes


def test_free_preferred_port_is_used(tmp_path: Path) -> None:
    port = _free()
    chosen, notes = _choose(_project(port), State(tmp_path / "s.json"))
    assert chosen == {"postgres": port}
    assert notes == []


def test_taken_preferred_port_falls_back_and_says_so(tmp_path: Path, held: int) -> None:
    chosen, notes = _choose(_project(held), State(tmp_path / "s.json"))
    assert chosen["postgres"] != held
    assert notes == [f"postgres: port {held} is taken, using {chosen['postgres']} instead"]


def test_strict_ports_fails_instead(tmp_path: Path, held: int) -> None:
    with pytest.raises(PortConflictError, match=f"host port {held} is held by another process"):
        _choose(_project(held), State(tmp_path / "s.json"), strict=True)


def test_remembered_port_wins_over_preferred(tmp_path: Path) -> None:
    remembered = _free()
    state = State(tmp_path / "s.json", ports={"postgres": remembered})
    chosen, _ = _choose(_project(_free()), state)
    assert chosen == {"postgres": remembered}


def test_another_projects_claim_is_never_chosen(tmp_path: Path) -> None:
    port = _free()
    chosen, notes = _choose(_project(port), State(tmp_path / "s.json"), claimed={port})
    assert chosen["postgres"] != port
    assert notes


def test_claims_round_trip_and_ignore_own_and_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVENV_CACHE", str(tmp_path))
    with port_claims("a") as claims:
        claims.claim([5432, 8080])
    with port_claims("b") as claims:
        assert claims.others() == {5432, 8080}
        claims.claim([5433])
    with port_claims("a") as claims:
        assert claims.others() == {5433}
        assert claims.others(now=10**12) == set()  # a week-old claim is advice no longer
        claims.release()
    with port_claims("b") as claims:
        assert claims.others() == set()
    assert isinstance(claims, PortClaims)
