"""HTML of the dashboard: the page and the fragments the event stream swaps in (autoescaped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from devenv.ui.svg import render_svg
from devenv.ui.views import ActionView, CheckRun, ServiceView
from devenv.ui.watch import WatchView

if TYPE_CHECKING:
    from jinja2 import Environment

# the order fragments appear in on the page, and the SSE event names that replace them
FRAGMENTS = ("meta", "action", "services", "watch", "checks", "phases")


@cache
def _env() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("devenv.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(template: str, **values: object) -> str:
    return _env().get_template(template).render(**values).strip()


def render_page(
    *, project: str, profile: str, token: str, fragments: Mapping[str, str], services: Sequence[str]
) -> str:
    from markupsafe import Markup

    return _render(
        "page.html",
        project=project,
        profile=profile,
        token=token,
        services=services,
        # fragments are rendered (and escaped) by the functions below
        fragments={name: Markup(fragments.get(name, "")) for name in FRAGMENTS},  # noqa: S704
    )


def render_services(services: Sequence[ServiceView], error: str | None = None) -> str:
    return _render("services.html", services=services, error=error)


def render_meta(updated: str, pass_ms: float | None, error: str | None = None) -> str:
    return _render("meta.html", updated=updated, pass_ms=pass_ms, error=error)


def render_checks(run: CheckRun | None, *, running: bool) -> str:
    return _render("checks.html", run=run, running=running)


def render_phases(run: CheckRun | None) -> str:
    if run is None or run.evaluation is None:
        why = run.error if run is not None and run.error else "waiting for the first check run"
        return _render("phases_empty.html", why=why)
    from markupsafe import Markup

    svg = Markup(render_svg(run.evaluation))  # noqa: S704 - svg.py escapes every text it writes
    return _render("phases.html", run=run, svg=svg)


def render_watch(view: WatchView | None, *, now: datetime) -> str:
    age = None
    if view is not None and view.cycle is not None:
        age = max(0, int((now - view.cycle.time).total_seconds()))
    return _render("watch.html", view=view, age=age)


def render_action(action: ActionView) -> str:
    return _render("action.html", action=action)


def render_logs(service: str, lines: Sequence[str], error: str | None = None) -> str:
    return _render("logs.html", service=service, lines=lines, error=error)
