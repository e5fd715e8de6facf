"""Thin typer commands: parse options, call one app function, render; the one error boundary."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from devenv.errors import ConfigError, DevenvError, Interrupted, ReadinessError

if TYPE_CHECKING:
    from devenv.model import CheckResult
    from devenv.stack import Options

app = typer.Typer(
    name="devenv",
    help="One command to a verified local Ignition stack, and which phases can proceed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
images_app = typer.Typer(
    help="Build the local stand-in images ahead of time.", no_args_is_help=True
)
app.add_typer(images_app, name="images")

_T0 = time.monotonic()
_SECRETS: list[str] = []

ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", help="Project name (default: $DEVENV_PROJECT or the dir name)."
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", help="Profile name in profiles/ or a path to a .toml ($DEVENV_PROFILE)."
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a profile key, e.g. services.postgres.url=... (repeatable)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
SecretsOpt = Annotated[bool, typer.Option("--show-secrets", help="Print credentials unmasked.")]


def _options(project: str | None, profile: str | None, sets: list[str] | None = None) -> Options:
    from devenv.stack import Options, default_project_name, find_root

    root = find_root()
    overrides: dict[str, str] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r} has no '='", hint="write --set KEY=VALUE")
        overrides[key.strip()] = value
    return Options(
        root=root,
        project=project or default_project_name(root),
        profile=profile,
        overrides=overrides,
    )


def _redact(text: str) -> str:
    if not _SECRETS:
        return text
    from devenv.config.secrets import redact

    return redact(text, _SECRETS)


def _remember_secrets(options: Options) -> None:
    """Collect every secret this run knows so that no output path can print one."""
    from devenv.state import load_state

    try:
        state = load_state(options.root, options.project)
    except DevenvError:
        return
    _SECRETS.extend(v for v in state.credentials.values() if v)
    from devenv.config.profiles import resolve_profile

    try:  # the profile's own secrets (extra backend env, provider keys) are masked too
        profile = resolve_profile(
            options.root, options.profile, environ=options.environ, cli_overrides=options.overrides
        )
        _SECRETS.extend(profile.secrets())
    except DevenvError:
        pass  # the command reports the profile error itself
    for key, value in options.environ.items():
        if value and len(value) >= 6 and any(w in key for w in ("SECRET", "PASSWORD", "TOKEN")):
            _SECRETS.append(value)
        if value and key.endswith("_URL") and "@" in value:
            _SECRETS.append(value)


def progress(message: str) -> None:
    elapsed = time.monotonic() - _T0
    print(f"[{elapsed:5.1f}s] {_redact(message)}", file=sys.stderr, flush=True)


def _emit(text: str) -> None:
    print(_redact(text))


def _emit_json(data: Any) -> None:
    print(_redact(json.dumps(data, indent=2, sort_keys=False, default=str)))


# --- commands ----------------------------------------------------------------------------


@app.command()
def up(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, change nothing.")
    ] = False,
    strict_ports: Annotated[
        bool, typer.Option("--strict-ports", help="Fail instead of falling back to a free port.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
    seed_protected: Annotated[
        bool,
        typer.Option(
            "--seed-protected",
            help="Create the bucket and seed the dev user even on protected providers.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring the stack up and wait until every service is verified healthy."""
    from devenv import app as core

    options = _options(project, profile, sets)
    _remember_secrets(options)
    if dry_run:
        planned = core.plan_up(options, strict_ports=strict_ports)
        plan = planned.plan
        for note in planned.notes:
            progress(note)
        if as_json:
            _emit_json({"plan": [s.__dict__ for s in plan.steps], "noop": plan.noop})
        else:
            _emit(plan.text())
        return
    result = core.up(
        options,
        progress=progress,
        strict_ports=strict_ports,
        timeout=timeout,
        seed_protected=seed_protected,
    )
    if as_json:
        _emit_json(
            {
                "project": result.project,
                "profile": result.profile,
                "noop": result.noop,
                "seconds": round(result.seconds, 3),
                "plan": [s.__dict__ for s in result.plan.steps],
                "services": [o.__dict__ for o in result.outcomes],
                "notes": result.notes,
            }
        )
        return
    if result.noop:
        _emit(f"Nothing to do: {result.project} is up to date and healthy ({result.seconds:.2f}s).")
    for o in result.outcomes:
        _emit(f"  {o.service:<12} {o.action:<10} healthy  {o.detail}")
    if not result.noop:
        _emit(f"Stack {result.project} is up (profile {result.profile}) in {result.seconds:.2f}s.")


@app.command()
def down(
    project: ProjectOpt = None,
    volumes: Annotated[
        bool, typer.Option("--volumes", "-v", help="Also delete the data volumes.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before deleting data.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop and remove the containers; data volumes are kept unless --volumes."""
    from devenv import app as core
    from devenv.errors import RefusedError

    options = _options(project, None)
    if volumes and not yes:
        if not sys.stdin.isatty():
            raise RefusedError(
                f"`down --volumes` deletes the data of project {options.project}",
                hint="add --yes to confirm",
            )
        typer.confirm(
            f"Delete all data (Postgres, buckets) of project {options.project}?", abort=True
        )
    result = core.down(options, volumes=volumes, progress=progress)
    if as_json:
        _emit_json(result.__dict__)
        return
    _emit(f"Removed {len(result.removed)} container(s): {', '.join(result.removed) or 'none'}.")
    if result.volumes_removed:
        _emit(f"Deleted volumes: {', '.join(result.volumes_removed)}.")
    elif result.volumes_kept:
        _emit(f"Kept volumes (data safe): {', '.join(result.volumes_kept)}.")


@app.command()
def status(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    show_secrets: SecretsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show each service: provider, state, health, image and URL. Exits 1 if one is unhealthy."""
    from devenv import app as core

    options = _options(project, profile, sets)
    if not show_secrets:
        _remember_secrets(options)
    data = core.status(options, show_secrets=show_secrets)
    unhealthy = [s for s in data["services"] if not s["healthy"]]
    if as_json:
        _emit_json(data)
    else:
        rows = [("SERVICE", "PROVIDER", "STATE", "HEALTHY", "URL")]
        for s in data["services"]:
            rows.append(
                (s["name"], s["provider"], s["state"], "yes" if s["healthy"] else "no", s["url"])
            )
        _emit(f"project {data['project']}, profile {data['profile']}")
        _emit(_table(rows))
        for s in data["services"]:
            if not s["healthy"] and s["detail"]:
                _emit(f"  {s['name']}: {s['detail']}")
            if s.get("env"):
                shown = ", ".join(f"{k}={v}" for k, v in s["env"].items())
                _emit(f"  {s['name']} extra env: {shown}")
    if unhealthy:
        from devenv.errors import UnhealthyError

        first = unhealthy[0]
        said = f"{first['name']}: {first['detail'] or first['state']}"
        more = f" (and {len(unhealthy) - 1} more)" if len(unhealthy) > 1 else ""
        raise UnhealthyError(said + more, hint="`devenv up` starts what is missing")


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


@app.command()
def logs(
    service: Annotated[str | None, typer.Argument(help="postgres, objectstore or backend")] = None,
    project: ProjectOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    tail: Annotated[int, typer.Option(help="Lines per service.")] = 100,
) -> None:
    """Print (or follow) the logs of one service or all."""
    from devenv import app as core

    options = _options(project, None)
    _remember_secrets(options)
    for line in core.logs(options, service, follow=follow, tail=tail):
        print(_redact(line.rstrip("\n")), flush=follow)


@app.command()
def check(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    scaffold: Annotated[
        bool, typer.Option("--scaffold/--no-scaffold", help="Also run cargo check/fmt/clippy.")
    ] = False,
) -> None:
    """Smoke-test the running stack against the backend contract.

    Exits 1 when a required check fails; advisory failures are listed and exit 0."""
    from devenv import app as core
    from devenv.errors import ChecksFailedError

    options = _options(project, profile, sets)
    _remember_secrets(options)
    stack, results = core.run_checks(options, scaffold=scaffold)
    if junit is not None:
        from devenv.checks.junit import write_junit

        write_junit(junit, results)
    failed = [c for c in results if c.blocking]
    advisory = [c for c in results if c.failed and not c.blocking]
    if as_json:
        _emit_json(
            {
                "schema_version": core.SCHEMA_VERSION,
                "profile": stack.profile.name,
                "ok": not failed,
                "failed": [c.id for c in failed],
                "advisory_failed": [c.id for c in advisory],
                "checks": [c.__dict__ for c in results],
            }
        )
    else:
        for c in results:
            _emit(_check_line(c))
        _emit(_check_summary(results))
    if failed:
        raise ChecksFailedError(_failure_line(failed))


def _check_line(c: CheckResult) -> str:
    if c.skipped:
        mark, detail = "skip", f"({c.cause} failed)" if c.cause else c.detail
    elif c.ok:
        mark, detail = "ok", c.detail
    else:
        mark, detail = ("FAIL", c.detail) if c.level == "required" else ("warn", c.detail)
    return f"{mark:<5} {c.id:<27} {detail}"


def _check_summary(results: Sequence[CheckResult]) -> str:
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


def _failure_line(failed: Sequence[CheckResult]) -> str:
    """The root causes first: a dead service explains the checks skipped behind it."""
    first = failed[0]
    more = f" (and {len(failed) - 1} more: {', '.join(c.id for c in failed[1:])})"
    return f"{first.id}: {first.detail}" + (more if len(failed) > 1 else "")


@app.command()
def report(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or markdown.")] = "table",
    as_json: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
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

    options = _options(project, profile, sets)
    _remember_secrets(options)
    if as_json:
        fmt = "json"
    if fmt not in ("table", "json", "markdown"):
        raise ConfigError(
            f"unknown format {fmt!r}", key="--format", hint="use table, json or markdown"
        )
    result = core.render_report(options, fmt=fmt, registry=registry, scaffold=scaffold)
    if output is not None:
        output.write_text(_redact(result.text).rstrip("\n") + "\n", encoding="utf-8")
        progress(f"wrote {output}")
    else:
        _emit(result.text)
    if (result.failed or result.regressed) and not exit_zero:
        from devenv.errors import ChecksFailedError

        said = []
        if result.failed:
            said.append(f"required checks failed: {', '.join(result.failed)}")
        if result.regressed:
            said.append(f"regressed: phase {', '.join(result.regressed)}")
        raise ChecksFailedError(
            "; ".join(said), hint="see the report; --exit-zero exits 0 after writing it"
        )


@app.command("config")
def config_cmd(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the resolved configuration with each value's source layer; secrets masked."""
    from devenv.config.profiles import describe, resolve_profile

    options = _options(project, profile, sets)
    _remember_secrets(options)
    prof = resolve_profile(
        options.root, options.profile, environ=options.environ, cli_overrides=options.overrides
    )
    _SECRETS.extend(prof.secrets())
    rows = describe(prof)
    if as_json:
        _emit_json(
            {
                "profile": prof.name,
                "dev_bypass": prof.dev_bypass,
                "protected": list(prof.protected_in_play),
                "values": [{"key": k, "value": v, "source": s} for k, v, s in rows],
            }
        )
        return
    _emit(f"profile {prof.name}  dev_bypass={str(prof.dev_bypass).lower()}")
    _emit(_table([("KEY", "VALUE", "SOURCE"), *rows]))


@app.command()
def profiles(as_json: JsonOpt = False) -> None:
    """List the available profiles."""
    from devenv.config.profiles import list_profiles
    from devenv.stack import find_root

    found = list_profiles(find_root())
    if as_json:
        _emit_json(
            [{"name": n, "path": str(p) if p else None, "description": d} for n, p, d in found]
        )
        return
    _emit(_table([("NAME", "DESCRIPTION"), *((n, d) for n, _p, d in found)]))


@images_app.command("build")
def images_build(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Build every missing stand-in image (base, postgres, objectstore, backend)."""
    from devenv import app as core

    options = _options(project, profile)
    built = core.build_images(options, progress=progress)
    for line in built:
        _emit(line)


def _register_ui() -> None:
    from devenv.cli.ui import ui

    app.command("ui")(ui)


_register_ui()


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted(
        "stopped by SIGINT",
        hint="run `devenv up` again: it adopts or replaces whatever was half made",
    )


def run() -> None:
    """Console entry point: the one place that turns handled errors into one line + exit code."""
    import signal

    signal.signal(signal.SIGINT, _interrupt)
    try:
        app()
    except DevenvError as exc:
        print(_redact(exc.one_line()), file=sys.stderr)
        if isinstance(exc, ReadinessError) and exc.details:
            print(_redact(exc.details), file=sys.stderr)
        sys.exit(exc.exit_code)
