"""Service dependency graph: cycle search and a stable topological order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from devenv.errors import ConfigError
from devenv.model import ServiceSpec

Graph = Mapping[str, Iterable[str]]


def _as_graph(services: Graph | Iterable[ServiceSpec]) -> dict[str, tuple[str, ...]]:
    if isinstance(services, Mapping):
        return {name: tuple(deps) for name, deps in services.items()}
    return {svc.name: svc.depends_on for svc in services}


def find_cycle(services: Graph | Iterable[ServiceSpec]) -> list[str] | None:
    """The first dependency cycle as a closed path ``[a, b, a]``, or None; deterministic."""
    graph = _as_graph(services)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done or node not in graph:
            return None
        for dep in graph[node]:
            found = visit(dep, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for name in graph:
        cycle = visit(name, [])
        if cycle:
            return cycle
    return None


def topological_order(services: Graph | Iterable[ServiceSpec]) -> list[str]:
    """Dependencies first; among services ready at the same time, declaration order wins.

    Declaration order (not the alphabet) keeps the order a reader of compose.yaml expects:
    postgres, objectstore, backend. Dependencies on names outside the graph are ignored.
    """
    graph = _as_graph(services)
    cycle = find_cycle(graph)
    if cycle:
        raise ConfigError(f"dependency cycle: {' → '.join(cycle)}")
    placed: list[str] = []
    seen: set[str] = set()
    remaining = list(graph)
    while remaining:
        ready = next(
            name for name in remaining if all(d in seen or d not in graph for d in graph[name])
        )
        placed.append(ready)
        seen.add(ready)
        remaining.remove(ready)
    return placed
