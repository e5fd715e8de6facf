"""Dependency graphs (services, phases): the one cycle search and a stable topological order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Graph = Mapping[str, Iterable[str]]


def find_cycle(nodes: Graph) -> list[str] | None:
    """The first dependency cycle as a closed path ``[a, b, a]``, or None; deterministic."""
    graph = {name: tuple(deps) for name, deps in nodes.items()}
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


def topological_order(nodes: Graph) -> list[str]:
    """Dependencies first; among nodes ready at the same time, declaration order wins.

    Declaration order (not the alphabet) keeps the order a reader of compose.yaml expects:
    postgres, objectstore, backend. Dependencies on names outside the graph are ignored.
    Raises ValueError on a cycle: callers check `find_cycle` first to say where it is.
    """
    graph = {name: tuple(deps) for name, deps in nodes.items()}
    cycle = find_cycle(graph)
    if cycle:
        raise ValueError(f"dependency cycle: {' → '.join(cycle)}")
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
