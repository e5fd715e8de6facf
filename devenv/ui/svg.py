"""The phase graph as a picture: deterministic SVG from the Evaluation the Markdown report uses.

Layout: each phase sits in the layer of its dependency depth (the longest chain of `needs` above
it), top to bottom. Within a layer phases are ordered by where their prerequisites sit, then by
how much depends on them (so the main chain keeps the left column), then by registry order.
Edges run through the gaps between layers; an edge that skips layers takes a lane of its own on
the left, so no line crosses a box. Blockers (the same selection as the Markdown graph: LATER
items, and decisions or unknowns that are still open) are drawn as badges inside the phases they
hold and as a column on the right. Everything here is arithmetic on the Evaluation: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from devenv.phases.evaluate import BlockerStatus, Evaluation, PartVerdict, PhaseVerdict

# fill, stroke, text: the palette of the Markdown report's Mermaid classes
PALETTE: Mapping[str, tuple[str, str, str]] = {
    "complete": ("#d4edda", "#28a745", "#155724"),
    "can-proceed": ("#fff3cd", "#d39e00", "#856404"),
    "blocked": ("#f8d7da", "#dc3545", "#721c24"),
    "regressed": ("#ffe5d0", "#fd7e14", "#7a3e00"),
}
VERDICTS = tuple(PALETTE)
EDGE = "#6c757d"

NODE_W = 240.0
NODE_H = 54.0  # three text lines; badge rows add to it
GAP_X = 24.0
GAP_Y = 36.0
BADGE_W = 70.0
BADGE_H = 15.0
BADGE_GAP = 4.0
LANE = 8.0  # distance between the lanes of layer-skipping edges
MARGIN = 12.0
LEGEND_H = 30.0
BLOCKER_W = 250.0
BLOCKER_H = 50.0
BLOCKER_GAP = 8.0
COLUMN_GAP = 48.0
CHAR_W = 6.6  # average advance of a 12 px sans-serif glyph: enough to decide where to cut
SMALL_CHAR_W = 5.9  # 11 px


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    layers: Mapping[str, int]
    phases: Mapping[str, Box]
    badges: Mapping[str, tuple[str, ...]]  # phase id -> blocker ids drawn inside it
    blockers: Mapping[str, Box]
    edges: tuple[Edge, ...]


def shown_blockers(evaluation: Evaluation) -> tuple[BlockerStatus, ...]:
    """What the graph shows: LATER items that hold a phase, and open decisions or unknowns."""
    phase_ids = {p.id for p in evaluation.phases}
    return tuple(
        b
        for b in evaluation.blockers
        if any(ph in phase_ids for ph in b.blocks) and (b.kind == "later" or not b.resolved)
    )


def depths(phases: Sequence[PhaseVerdict]) -> dict[str, int]:
    """Each phase's layer: 0 without prerequisites, else one below its deepest prerequisite."""
    by_id = {p.id: p for p in phases}
    found: dict[str, int] = {}

    def depth(phase_id: str, trail: tuple[str, ...]) -> int:
        if phase_id in found:
            return found[phase_id]
        needs = [n for n in by_id[phase_id].needs if n in by_id and n not in trail]
        found[phase_id] = 1 + max((depth(n, (*trail, phase_id)) for n in needs), default=-1)
        return found[phase_id]

    for p in phases:
        depth(p.id, ())
    return found


def _dependents(phases: Sequence[PhaseVerdict]) -> dict[str, int]:
    """How many phases depend on each one, directly or not."""
    children: dict[str, list[str]] = {p.id: [] for p in phases}
    for p in phases:
        for need in p.needs:
            if need in children:
                children[need].append(p.id)
    counts: dict[str, int] = {}
    for p in phases:
        seen: set[str] = set()
        stack = list(children[p.id])
        while stack:
            child = stack.pop()
            if child not in seen:
                seen.add(child)
                stack.extend(children[child])
        counts[p.id] = len(seen)
    return counts


def _badge_rows(count: int) -> int:
    per_row = max(1, int((NODE_W - 12 + BADGE_GAP) // (BADGE_W + BADGE_GAP)))
    return -(-count // per_row)


def _node_height(badges: int) -> float:
    rows = _badge_rows(badges)
    return NODE_H + (rows * (BADGE_H + BADGE_GAP) + 2 if rows else 0)


def layout(evaluation: Evaluation) -> Layout:
    phases = evaluation.phases
    order = {p.id: i for i, p in enumerate(phases)}
    layer_of = depths(phases)
    dependents = _dependents(phases)
    blockers = shown_blockers(evaluation)
    badges = {p.id: tuple(b.id for b in blockers if p.id in b.blocks) for p in phases}

    layers: list[list[PhaseVerdict]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for p in phases:
        layers[layer_of[p.id]].append(p)
    column: dict[str, int] = {}
    for members in layers:

        def key(p: PhaseVerdict) -> tuple[float, int, int]:
            parents = [column[n] for n in p.needs if n in column]
            centre = sum(parents) / len(parents) if parents else 0.0
            return (centre, -dependents[p.id], order[p.id])

        members.sort(key=key)
        for i, p in enumerate(members):
            column[p.id] = i

    edges_in = [(need, p.id) for p in phases for need in p.needs if need in layer_of]
    long_edges = [e for e in edges_in if layer_of[e[1]] - layer_of[e[0]] > 1]
    lanes_w = LANE * (len(long_edges) + 1)
    left = MARGIN + lanes_w
    top = MARGIN + LEGEND_H
    boxes: dict[str, Box] = {}
    layer_top: list[float] = []
    layer_bottom: list[float] = []
    y = top
    for members in layers:
        height = max((_node_height(len(badges[p.id])) for p in members), default=NODE_H)
        layer_top.append(y)
        for p in members:
            x = left + column[p.id] * (NODE_W + GAP_X)
            boxes[p.id] = Box(x, y, NODE_W, _node_height(len(badges[p.id])))
        y += height
        layer_bottom.append(y)
        y += GAP_Y
    widest = max((len(m) for m in layers), default=0)
    phases_right = left + widest * NODE_W + max(widest - 1, 0) * GAP_X

    edges = _route(edges_in, long_edges, boxes, layer_of, layer_top, layer_bottom, order)

    blocker_boxes: dict[str, Box] = {}
    bx = phases_right + COLUMN_GAP
    by = top
    for b in sorted(blockers, key=lambda b: _first_held(b, boxes)):
        want = _first_held(b, boxes)[0]
        by = max(by, want)
        blocker_boxes[b.id] = Box(bx, by, BLOCKER_W, BLOCKER_H)
        by += BLOCKER_H + BLOCKER_GAP
    right = bx + BLOCKER_W if blockers else phases_right
    bottom = max([y - GAP_Y, by - BLOCKER_GAP if blockers else 0.0, top])
    return Layout(
        width=right + MARGIN,
        height=bottom + MARGIN,
        layers=layer_of,
        phases=boxes,
        badges=badges,
        blockers=blocker_boxes,
        edges=edges,
    )


def _first_held(b: BlockerStatus, boxes: Mapping[str, Box]) -> tuple[float, str]:
    """Blockers line up beside the first phase they hold, ties in id order."""
    ys = [boxes[p].y for p in b.blocks if p in boxes]
    return (min(ys) if ys else 0.0, b.id)


def _route(
    edges_in: Sequence[tuple[str, str]],
    long_edges: Sequence[tuple[str, str]],
    boxes: Mapping[str, Box],
    layer_of: Mapping[str, int],
    layer_top: Sequence[float],
    layer_bottom: Sequence[float],
    order: Mapping[str, int],
) -> tuple[Edge, ...]:
    """Orthogonal edges: out of the source's bottom, along gaps, into the target's top."""
    outgoing: dict[str, list[str]] = {}
    incoming: dict[str, list[str]] = {}
    for source, target in edges_in:
        outgoing.setdefault(source, []).append(target)
        incoming.setdefault(target, []).append(source)

    def spread(box: Box, index: int, count: int) -> float:
        return box.x + box.w * (index + 1) / (count + 1)

    def by_x(ids: list[str]) -> list[str]:
        return sorted(ids, key=lambda i: (boxes[i].x, order[i]))

    lane_of = {e: i for i, e in enumerate(long_edges)}
    left_edge = min((b.x for b in boxes.values()), default=MARGIN)
    edges: list[Edge] = []
    for source, target in edges_in:
        src, dst = boxes[source], boxes[target]
        outs, ins = by_x(outgoing[source]), by_x(incoming[target])
        sx = spread(src, outs.index(target), len(outs))
        tx = spread(dst, ins.index(source), len(ins))
        below = layer_bottom[layer_of[source]] + GAP_Y / 2
        above = layer_top[layer_of[target]] - GAP_Y / 2
        points: tuple[tuple[float, float], ...]
        if (source, target) in lane_of:
            lane = lane_of[(source, target)]
            lx = left_edge - LANE * (lane + 1)
            # nudge the runs so parallel edges in one gap stay apart
            nudge = ((lane % 5) - 2) * 3.0
            points = (
                (sx, src.bottom),
                (sx, below + nudge),
                (lx, below + nudge),
                (lx, above + nudge),
                (tx, above + nudge),
                (tx, dst.y),
            )
        else:
            points = ((sx, src.bottom), (sx, below), (tx, below), (tx, dst.y))
        edges.append(Edge(source, target, _dedupe(points)))
    return tuple(edges)


def _dedupe(points: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    out: list[tuple[float, float]] = []
    for p in points:
        if not out or out[-1] != p:
            out.append(p)
    return tuple(out)


# --- rendering ---------------------------------------------------------------------------


def fit(text: str, width: float, char_w: float = CHAR_W) -> str:
    """Cut text to what fits in `width` pixels, marking the cut with an ellipsis."""
    room = int(width // char_w)
    if len(text) <= room:
        return text
    return text[: max(room - 1, 0)].rstrip() + "…"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _attrs(**values: str | float) -> str:
    parts = []
    for name, value in values.items():
        shown = _n(value) if isinstance(value, float | int) else value
        parts.append(f'{name.rstrip("_").replace("_", "-")}="{escape(str(shown), quote=True)}"')
    return " ".join(parts)


def _text(x: float, y: float, text: str, **more: str | float) -> str:
    return f"<text {_attrs(x=x, y=y, **more)}>{escape(text, quote=False)}</text>"


def _part_line(label: str, part: PartVerdict) -> str:
    held = f" · {', '.join(part.blocked_by)}" if part.blocked_by else ""
    return f"{label}: {part.status}{held}"


def _phase_title(p: PhaseVerdict) -> str:
    lines = [
        f"{p.id} {p.name}",
        _part_line("local", p.local),
        *(f"  {e}" for e in p.local.evidence),
        _part_line("production", p.production),
        *(f"  {e}" for e in p.production.evidence),
    ]
    return "\n".join(lines)


def _phase(p: PhaseVerdict, box: Box, badges: Sequence[str], held: Mapping[str, bool]) -> str:
    fill, stroke, ink = PALETTE.get(p.local.status, PALETTE["blocked"])
    out = [
        f"<g {_attrs(class_='phase', data_phase=p.id, data_local=p.local.status)} "
        f"{_attrs(data_production=p.production.status)}>",
        f"<title>{escape(_phase_title(p), quote=False)}</title>",
        f"<rect {_attrs(x=box.x, y=box.y, width=box.w, height=box.h, rx=6.0)} "
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>',
        _text(
            box.x + 8,
            box.y + 17,
            fit(f"{p.id}  {p.name}", box.w - 16),
            fill=ink,
            font_weight="bold",
        ),
    ]
    for row, (label, part) in enumerate((("local", p.local), ("production", p.production))):
        y = box.y + 32 + row * 14
        swatch = PALETTE.get(part.status, PALETTE["blocked"])[1]
        out.append(
            f'<rect {_attrs(x=box.x + 8, y=y - 8, width=8.0, height=8.0, rx=1.5)} fill="{swatch}"/>'
        )
        out.append(
            _text(
                box.x + 21,
                y,
                fit(_part_line(label, part), box.w - 29, SMALL_CHAR_W),
                fill=ink,
                font_size=11.0,
            )
        )
    per_row = max(1, int((NODE_W - 12 + BADGE_GAP) // (BADGE_W + BADGE_GAP)))
    for i, blocker_id in enumerate(badges):
        bx = box.x + 8 + (i % per_row) * (BADGE_W + BADGE_GAP)
        by = box.y + NODE_H - 4 + (i // per_row) * (BADGE_H + BADGE_GAP)
        resolved = held.get(blocker_id, False)
        colour = PALETTE["complete" if resolved else "blocked"][1]
        state = "resolved" if resolved else "open"
        out += [
            f"<g {_attrs(class_='badge', data_blocker_ref=blocker_id, data_state=state)}>",
            f"<rect {_attrs(x=bx, y=by, width=BADGE_W, height=BADGE_H, rx=7.5)} "
            f'fill="#ffffff" stroke="{colour}"/>',
            _text(
                bx + BADGE_W / 2,
                by + 11,
                fit(blocker_id, BADGE_W - 6, 5.4),
                fill=colour,
                font_size=10.0,
                text_anchor="middle",
            ),
            "</g>",
        ]
    out.append("</g>")
    return "\n".join(out)


def _blocker(b: BlockerStatus, box: Box) -> str:
    fill, stroke, ink = PALETTE["complete" if b.resolved else "blocked"]
    state = f"resolved: {b.by}" if b.resolved and b.by else ("resolved" if b.resolved else "open")
    holds = f"holds {', '.join(b.blocks)}"
    title = "\n".join(x for x in (f"{b.id} {b.what}", state, b.note, holds) if x)
    return "\n".join(
        [
            f"<g {_attrs(class_='blocker', data_blocker=b.id, data_kind=b.kind)} "
            f"{_attrs(data_state='resolved' if b.resolved else 'open')}>",
            f"<title>{escape(title, quote=False)}</title>",
            f"<rect {_attrs(x=box.x, y=box.y, width=box.w, height=box.h, rx=10.0)} "
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5" stroke-dasharray="5 3"/>',
            _text(
                box.x + 8,
                box.y + 16,
                fit(f"{b.id} · {'resolved' if b.resolved else 'open'}", box.w - 16),
                fill=ink,
                font_weight="bold",
            ),
            _text(
                box.x + 8,
                box.y + 30,
                fit(b.what, box.w - 16, SMALL_CHAR_W),
                fill=ink,
                font_size=11.0,
            ),
            _text(
                box.x + 8,
                box.y + 43,
                fit(b.note or holds, box.w - 16, SMALL_CHAR_W),
                fill=ink,
                font_size=11.0,
            ),
            "</g>",
        ]
    )


def _legend() -> str:
    out = ['<g class="legend">']
    x = MARGIN
    for verdict in VERDICTS:
        fill, stroke, _ink = PALETTE[verdict]
        out.append(
            f"<rect {_attrs(x=x, y=MARGIN, width=14.0, height=14.0, rx=3.0)} "
            f'fill="{fill}" stroke="{stroke}"/>'
        )
        out.append(_text(x + 19, MARGIN + 11, verdict, fill="#212529", font_size=11.0))
        x += 24 + len(verdict) * SMALL_CHAR_W + 16
    out.append(
        _text(
            x,
            MARGIN + 11,
            "fill: local verdict · squares: local, production · badges: blockers",
            fill="#495057",
            font_size=11.0,
        )
    )
    out.append("</g>")
    return "\n".join(out)


def render_svg(evaluation: Evaluation) -> str:
    """The whole picture as one <svg> element (self-contained: colours are attributes)."""
    lay = layout(evaluation)
    blockers = shown_blockers(evaluation)
    resolved = {b.id: b.resolved for b in blockers}
    size = f"{_n(lay.width)} {_n(lay.height)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {_attrs(viewBox=f"0 0 {size}")} '
        f"{_attrs(width=lay.width, height=lay.height)} "
        'class="phase-graph" role="img" font-family="system-ui, sans-serif" font-size="12">',
        "<title>Phase graph: local and production verdicts, and their blockers</title>",
        "<defs>",
        '<marker id="devenv-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE}"/>'
        "</marker>",
        "</defs>",
        _legend(),
        '<g class="edges">',
    ]
    for e in lay.edges:
        d = "M" + " L".join(f"{_n(x)},{_n(y)}" for x, y in e.points)
        out.append(
            f"<path {_attrs(d=d, data_from=e.source, data_to=e.target)} "
            f'fill="none" stroke="{EDGE}" stroke-width="1.2" marker-end="url(#devenv-arrow)"/>'
        )
    out.append("</g>")
    out += [_phase(p, lay.phases[p.id], lay.badges[p.id], resolved) for p in evaluation.phases]
    out += [_blocker(b, lay.blockers[b.id]) for b in blockers]
    out.append("</svg>")
    return "\n".join(out)
