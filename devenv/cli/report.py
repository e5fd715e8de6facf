"""`devenv report`: phase readiness from checks run now, as a table, JSON or Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devenv.cli.options import JsonOpt, OutputOpt, console, options
from devenv.console import versioned
from devenv.errors import ConfigError

if TYPE_CHECKING:
    from devenv.app import ReportResult

FORMATS = ("table", "json", "markdown")


def report(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="table, json or markdown.")] = "table",
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    registry: Annotated[Path | None, typer.Option(help="Phase registry TOML file.")] = None,
    scaffold: Annotated[bool, typer.Option("--scaffold/--no-scaffold")] = False,
    exit_zero: Annotated[
        bool,
        typer.Option(
            "--exit-zero", help="Exit 0 even when a required check failed or a phase regressed."
        ),
    ] = False,
) -> None:
    """Which phases can proceed locally and in production, from checks run now.

    Exits 1 when a required check failed or a phase marked complete regressed."""
    from devenv import app as core
    from devenv.errors import ChecksFailedError

    out = console(ctx)
    opts = options(ctx)
    if as_json:
        fmt = "json"
    if fmt not in FORMATS:
        raise ConfigError(
            f"unknown format {fmt!r}", key="--format", hint="use table, json or markdown"
        )
    result = core.report(opts, registry=registry, scaffold=scaffold, secrets=out.secrets)
    # every string redacted before Markdown or JSON escapes it; the text once more on the way out
    text = render(out.secrets.redact_data(result), fmt)
    if output is not None:
        out.write_file(output, text)
        out.progress(f"wrote {output}")
    else:
        out.line(text)
    if (result.failed or result.regressed) and not exit_zero:
        said = []
        if result.failed:
            said.append(f"required checks failed: {', '.join(result.failed)}")
        if result.regressed:
            said.append(f"regressed: phase {', '.join(result.regressed)}")
        raise ChecksFailedError(
            "; ".join(said), hint="see the report; --exit-zero exits 0 after writing it"
        )


def render(result: ReportResult, fmt: str) -> str:
    checks = list(result.checks)
    if fmt == "json":
        from devenv.report.json_report import dumps, to_json

        return dumps(
            versioned(
                to_json(
                    result.evaluation,
                    profile_name=result.profile,
                    checks=checks,
                    generated_at=result.generated_at,
                )
            )
        )
    if fmt == "markdown":
        from devenv.report.markdown import render_markdown

        return render_markdown(
            result.evaluation,
            profile_name=result.profile,
            checks=checks,
            generated_at=result.generated_at,
        )
    from devenv.report.table import render_table

    return render_table(result.evaluation, profile_name=result.profile, checks=checks)


def register(app: typer.Typer) -> None:
    app.command()(report)
