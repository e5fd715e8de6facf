"""HTML of the dashboard: the page and the fragments the event stream swaps in.

Every value a template writes passes through the run's redaction as plain text first (the
environment's `finalize`), and only then through HTML escaping: a password holding `&` or `'`
is masked as written, not missed in its escaped form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from devenv.config.secrets import redact_data
from devenv.ui.svg import render_svg
from devenv.ui.views import ActionView, CheckRun, ServiceView
from devenv.ui.watch import WatchView

if TYPE_CHECKING:
    from jinja2 import Environment

Redact = Callable[[str], str]

# the order fragments appear in on the page, and the SSE event names that replace them
FRAGMENTS = ("meta", "action", "services", "watch", "checks", "phases")


def _as_is(text: str) -> str:
    return text


@cache
def _env() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
    from jinja2.runtime import Context
    from markupsafe import Markup

    @pass_context
    def finalize(ctx: Context, value: Any) -> Any:
        # before autoescape: plain strings only (Markup is a fragment already redacted)
        if isinstance(value, str) and not isinstance(value, Markup):
            redact: Redact = ctx["redact"]
            return redact(value)
        return value

    def join(items: Iterable[object], separator: str = "") -> str:
        # plain text, unlike the built-in's Markup: finalize redacts it, then it is escaped
        return separator.join(str(item) for item in items)

    env = Environment(
        loader=PackageLoader("devenv.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
    )
    env.filters["join"] = join
    return env


def _render(template: str, redact: Redact, **values: object) -> str:
    return _env().get_template(template).render(redact=redact, **values).strip()


def render_page(
    *,
    project: str,
    profile: str,
    token: str,
    fragments: Mapping[str, str],
    services: Sequence[str],
    redact: Redact = _as_is,
) -> str:
    from markupsafe import Markup

    return _render(
        "page.html",
        redact,
        project=project,
        profile=profile,
        token=token,
        services=services,
        # fragments are rendered (redacted, then escaped) by the functions below
        fragments={name: Markup(fragments.get(name, "")) for name in FRAGMENTS},  # noqa: S704
    )


def render_services(
    services: Sequence[ServiceView], error: str | None = None, *, redact: Redact = _as_is
) -> str:
    return _render("services.html", redact, services=services, error=error)


def render_meta(
    updated: str, pass_ms: float | None, error: str | None = None, *, redact: Redact = _as_is
) -> str:
    return _render("meta.html", redact, updated=updated, pass_ms=pass_ms, error=error)


def render_checks(run: CheckRun | None, *, running: bool, redact: Redact = _as_is) -> str:
    return _render("checks.html", redact, run=run, running=running)


def render_phases(run: CheckRun | None, *, redact: Redact = _as_is) -> str:
    if run is None or run.evaluation is None:
        why = run.error if run is not None and run.error else "waiting for the first check run"
        return _render("phases_empty.html", redact, why=why)
    from markupsafe import Markup

    # svg.py escapes every text it writes: it gets the evidence redacted beforehand
    svg = Markup(render_svg(redact_data(run.evaluation, redact)))  # noqa: S704
    return _render("phases.html", redact, run=run, svg=svg)


def render_watch(view: WatchView | None, *, now: datetime, redact: Redact = _as_is) -> str:
    age = None
    if view is not None and view.cycle is not None:
        age = max(0, int((now - view.cycle.time).total_seconds()))
    return _render("watch.html", redact, view=view, age=age)


def render_action(action: ActionView, *, redact: Redact = _as_is) -> str:
    return _render("action.html", redact, action=action)


def render_logs(
    service: str, lines: Sequence[str], error: str | None = None, *, redact: Redact = _as_is
) -> str:
    return _render("logs.html", redact, service=service, lines=lines, error=error)
