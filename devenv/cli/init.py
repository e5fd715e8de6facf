"""`devenv init`: write a starter compose/ and profiles/ into the current directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devenv.cli.options import console


def _backend_dir(value: Path | None) -> Path | None:
    if value is not None and not value.is_dir():
        raise typer.BadParameter(f"{value} is not a directory")
    return value


def init(
    ctx: typer.Context,
    backend: Annotated[
        Path | None,
        typer.Option(
            "--backend",
            help="The backend checkout (its cargo workspace) the local profile builds.",
            callback=_backend_dir,
        ),
    ] = None,
) -> None:
    """Write a starter compose/ and profiles/ here (never over an existing file)."""
    from devenv.config.starter import write_starter

    out = console(ctx)
    root = Path.cwd()
    started = write_starter(root, backend)
    for path in started.written:
        out.line(f"wrote {path.relative_to(root)}")
    if started.ignored:
        out.line(f"added to .gitignore: {' '.join(started.ignored)}")
    if started.backend is None and not (root / "backend" / "Cargo.toml").is_file():
        out.line(
            "note: the backend is built from backend/ (compose/compose.yaml); set "
            "services.backend.context in profiles/local.toml to your backend's cargo workspace"
        )
    out.line("next: `devenv config` checks the files, `devenv up` brings the stack up")


def register(app: typer.Typer) -> None:
    app.command()(init)
