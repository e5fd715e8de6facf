"""`devenv check`: the route-contract smoke test; exit 1 when a required check fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devenv.cli.options import JsonOpt, console, creatable_file, options

if TYPE_CHECKING:
    from devenv.model import CheckResult


def check(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            help="Write JUnit XML here (missing directories are created).",
            callback=creatable_file,
        ),
    ] = None,
    scaffold: Annotated[
        bool, typer.Option("--scaffold/--no-scaffold", help="Also run cargo check/fmt/clippy.")
    ] = False,
) -> None:
    """Smoke-test the running stack against the backend contract.

    Exits 1 when a required check fails; advisory failures are listed and exit 0."""
    from devenv import app as core
    from devenv.errors import ChecksFailedError
    from devenv.report.data import check_data

    out = console(ctx)
    opts = options(ctx)
    run = core.run_checks(opts, scaffold=scaffold, secrets=out.secrets)
    results = run.results
    if junit is not None:
        from devenv.checks.junit import write_junit

        # redacted before XML escapes it
        write_junit(junit, out.secrets.redact_data(list(results)))
    if as_json:
        out.json(check_data(run))
    else:
        for c in results:
            out.line(check_line(c))
        out.line(check_summary(results))
    if run.failed:
        raise ChecksFailedError(failure_line(run.failed))


def check_line(c: CheckResult) -> str:
    if c.skipped:
        mark, detail = "skip", f"({c.cause} failed)" if c.cause else c.detail
    elif c.ok:
        mark, detail = "ok", c.detail
    else:
        mark, detail = ("FAIL", c.detail) if c.level == "required" else ("warn", c.detail)
    return f"{mark:<5} {c.id:<27} {detail}"


def check_summary(results: Sequence[CheckResult]) -> str:
    passed = sum(1 for c in results if c.ok and not c.skipped)
    failed = sum(1 for c in results if c.blocking)
    parts = [f"{passed} passed", f"{failed} failed"]
    advisory = sum(1 for c in results if c.failed and not c.blocking)
    if advisory:
        parts.append(f"{advisory} advisory failed (blocks nothing)")
    caused = sum(1 for c in results if c.cause)
    plain = sum(1 for c in results if c.skipped) - caused
    if caused:
        causes = ", ".join(dict.fromkeys(c.cause for c in results if c.cause))
        parts.append(f"{caused} skipped because {causes} failed")
    if plain:
        parts.append(f"{plain} skipped")
    return ", ".join(parts)


def failure_line(failed: Sequence[CheckResult]) -> str:
    """The root causes first: a dead service explains the checks skipped behind it."""
    first = failed[0]
    more = f" (and {len(failed) - 1} more: {', '.join(c.id for c in failed[1:])})"
    return f"{first.id}: {first.detail}" + (more if len(failed) > 1 else "")


def register(app: typer.Typer) -> None:
    app.command()(check)
