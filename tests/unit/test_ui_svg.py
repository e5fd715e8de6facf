"""The phase graph picture: layers by dependency depth, no line through a box, verdict colours."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from devenv.checks import ids
from devenv.model import CheckResult, Profile
from devenv.phases.evaluate import (
    BlockerStatus,
    Evaluation,
    PartVerdict,
    PhaseVerdict,
    evaluate,
)
from devenv.phases.registry import load_registry
from devenv.ui.svg import PALETTE, Box, depths, fit, layout, render_svg, shown_blockers

NS = {"svg": "http://www.w3.org/2000/svg"}
LOCAL = Profile(name="local", path=None, bindings={}, dev_bypass=True)


def live(*, failing: str | None = None) -> Evaluation:
    checks = [
        CheckResult(c, ids.check_name(c), c != failing, "boom" if c == failing else "ok")
        for c in ids.ALL_CHECK_IDS
    ]
    return evaluate(load_registry(), LOCAL, checks)


def phase(ident: str, *needs: str, name: str = "") -> PhaseVerdict:
    return PhaseVerdict(
        ident, name or f"phase {ident}", PartVerdict("complete"), PartVerdict("blocked"), needs
    )


def tiny(*phases: PhaseVerdict, blockers: tuple[BlockerStatus, ...] = ()) -> Evaluation:
    return Evaluation(phases=phases, blockers=blockers, actions=())


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well formed


def test_layers_are_the_longest_chain_of_needs() -> None:
    evaluation = live()
    layer = depths(evaluation.phases)
    assert layer["06"] == 0
    assert layer["07"] == 1
    assert layer["08"] == layer["frontend-move"] == layer["admin-move"] == 2
    assert layer["11"] == 3
    assert layer["14"] == 5  # needs 08 (2) and 11a (4): the deeper one counts
    assert layer["23"] == max(layer[n] for n in evaluation.phase("23").needs) + 1
    assert layer["26"] == layer["24"] + 1


def test_a_phase_sits_below_everything_it_needs_and_boxes_never_overlap() -> None:
    evaluation = live()
    lay = layout(evaluation)
    for p in evaluation.phases:
        for need in p.needs:
            assert lay.phases[need].bottom < lay.phases[p.id].y
    boxes: list[Box] = [*lay.phases.values(), *lay.blockers.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = a.right <= b.x or b.right <= a.x or a.bottom <= b.y or b.bottom <= a.y
            assert apart, (a, b)
    for box in boxes:
        assert box.x >= 0
        assert box.right <= lay.width
        assert box.y >= 0
        assert box.bottom <= lay.height


def test_the_main_chain_keeps_the_left_column() -> None:
    lay = layout(live())
    left = min(b.x for b in lay.phases.values())
    for chain in ("06", "07", "08", "11", "11a", "14", "17", "20", "23", "24", "26"):
        assert lay.phases[chain].x == left, chain
    assert lay.phases["18"].x > left
    assert lay.phases["frontend-move"].x > left


def test_edges_leave_the_bottom_enter_the_top_and_cross_no_box() -> None:
    evaluation = live()
    lay = layout(evaluation)
    wanted = {(n, p.id) for p in evaluation.phases for n in p.needs}
    assert {(e.source, e.target) for e in lay.edges} == wanted
    for edge in lay.edges:
        src, dst = lay.phases[edge.source], lay.phases[edge.target]
        assert edge.points[0][1] == src.bottom
        assert src.x < edge.points[0][0] < src.right
        assert edge.points[-1][1] == dst.y
        assert dst.x < edge.points[-1][0] < dst.right
        for (x1, y1), (x2, y2) in zip(edge.points, edge.points[1:], strict=False):
            assert x1 == x2 or y1 == y2  # orthogonal
            for ident, box in lay.phases.items():
                # the first and last segments touch their own boxes; nothing else may
                if ident in (edge.source, edge.target):
                    continue
                lo_x, hi_x = sorted((x1, x2))
                lo_y, hi_y = sorted((y1, y2))
                inside = lo_x < box.right and hi_x > box.x and lo_y < box.bottom and hi_y > box.y
                assert not inside, (edge.source, edge.target, ident)


def test_colours_follow_each_phases_local_verdict() -> None:
    evaluation = live(failing=ids.POSTGRES_READY)
    root = parse(render_svg(evaluation))
    seen = set()
    for g in root.iterfind(".//svg:g[@class='phase']", NS):
        verdict = evaluation.phase(g.attrib["data-phase"]).local.status
        assert g.attrib["data-local"] == verdict
        rect = g.find("svg:rect", NS)
        assert rect is not None
        assert (rect.attrib["fill"], rect.attrib["stroke"]) == PALETTE[verdict][:2]
        seen.add(verdict)
    assert {"complete", "blocked"} <= seen


def test_a_regressed_phase_is_drawn_as_regressed_with_its_root_cause() -> None:
    dead = "backend exited with code 101"
    checks = []
    for c in ids.ALL_CHECK_IDS:
        if c == ids.BACKEND_RUNNING:
            checks.append(CheckResult(c, ids.check_name(c), False, dead))
        elif c.startswith(("backend.", "route.", "middleware.", "blob.")):
            checks.append(
                CheckResult(c, ids.check_name(c), False, dead, True, cause="backend.running")
            )
        else:
            checks.append(CheckResult(c, ids.check_name(c), True, "ok"))
    evaluation = evaluate(load_registry(), LOCAL, checks)
    assert evaluation.phase("08").local.status == "regressed"
    root = parse(render_svg(evaluation))
    g = root.find(".//svg:g[@data-phase='08']", NS)
    assert g is not None
    assert g.attrib["data-local"] == "regressed"
    rect = g.find("svg:rect", NS)
    assert rect is not None
    assert rect.attrib["fill"] == PALETTE["regressed"][0]
    assert "local: regressed · backend.running" in "".join(g.itertext())


def test_phase_11_and_later_001_are_in_the_picture() -> None:
    root = parse(render_svg(live()))
    p11 = root.find(".//svg:g[@data-phase='11']", NS)
    assert p11 is not None
    assert "11  Database migration" in "".join(p11.itertext())
    blocker = root.find(".//svg:g[@data-blocker='LATER-001']", NS)
    assert blocker is not None
    assert blocker.attrib["data-state"] == "open"
    badges = [b.attrib["data-blocker-ref"] for b in p11.iterfind(".//svg:g[@class='badge']", NS)]
    assert badges == ["LATER-001"]


def test_blockers_are_the_markdown_graphs_selection() -> None:
    evaluation = live()
    shown = {b.id for b in shown_blockers(evaluation)}
    assert "LATER-001" in shown
    assert not any(b.startswith("DEC-") for b in shown)  # every decision is chosen
    assert set(layout(evaluation).blockers) == shown


def test_same_evaluation_same_picture() -> None:
    assert render_svg(live()) == render_svg(live())


def test_text_is_escaped_and_cut_to_fit() -> None:
    evil = phase("x<1>", name='<script>alert("x")</script> & a very long name that goes on')
    svg = render_svg(tiny(evil))
    assert "<script>" not in svg
    root = parse(svg)
    g = root.find(".//svg:g[@class='phase']", NS)
    assert g is not None
    assert g.attrib["data-phase"] == "x<1>"
    title = g.find("svg:title", NS)
    assert title is not None
    assert (title.text or "").startswith('x<1> <script>alert("x")</script> & a very long name')
    texts = [t.text or "" for t in g.iterfind("svg:text", NS)]
    assert texts[0].startswith("x<1>  <script>alert")
    assert texts[0].endswith("…")


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [("short", 100.0, "short"), ("abcdefghij", 33.0, "abcd…"), ("abc", 0.0, "…")],
)
def test_fit(text: str, width: float, expected: str) -> None:
    assert fit(text, width, 6.6) == expected


def test_a_cycle_in_bad_data_does_not_hang() -> None:
    # the registry loader refuses cycles; the picture still must not recurse forever
    lay = layout(tiny(phase("a", "b"), phase("b", "a")))
    assert set(lay.phases) == {"a", "b"}


def test_an_empty_registry_draws_an_empty_picture() -> None:
    root = parse(render_svg(tiny()))
    assert root.find(".//svg:g[@class='phase']", NS) is None
