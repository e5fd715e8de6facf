"""`devenv ui`: serve the live dashboard from this process on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from devenv.cli.options import JsonOpt, console, options
from devenv.console import versioned


def ui(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1 (default: a free one)."),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL, do not open a browser.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve a live dashboard of the stack, the checks and the phase graph on 127.0.0.1."""
    from devenv.errors import Interrupted
    from devenv.ui.adapter import Adapter, process_alive
    from devenv.ui.guard import new_token
    from devenv.ui.hub import Hub
    from devenv.ui.server import bind, create_app, serve

    out = console(ctx)
    opts = options(ctx)
    adapter = Adapter(opts, out.secrets)
    profile_name = adapter.validate()  # a bad profile fails here, before anything listens
    sock = bind(port)
    bound = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{bound}/"
    hub = Hub(adapter, alive=process_alive)
    web = create_app(hub, port=bound, token=new_token(), project=opts.project, profile=profile_name)
    # flushed: whoever started us (a script, a test) reads the URL before we serve
    if as_json:  # one line, which a script reads before the server takes over
        said = {"url": url, "project": opts.project, "profile": profile_name}
        out.line(json.dumps(versioned(said)), flush=True)
    else:
        out.line(
            f"devenv ui for project {opts.project} (profile {profile_name}): {url}", flush=True
        )
        out.progress("Ctrl-C stops it")
    if not no_browser:
        import webbrowser

        if not webbrowser.open(url):
            out.progress(f"no browser found; open {url} yourself")
    try:
        serve(web, sock)
    except Interrupted:
        out.progress("stopped")


def register(app: typer.Typer) -> None:
    app.command()(ui)
