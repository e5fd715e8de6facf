"""`devenv ui`: serve the live dashboard from this process on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
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
    from devenv.state import state_dir
    from devenv.ui.adapter import Adapter, process_alive
    from devenv.ui.guard import Keys, login_url
    from devenv.ui.hub import Hub
    from devenv.ui.server import bind, create_app, serve

    out = console(ctx)
    opts = options(ctx)
    adapter = Adapter(opts, out.secrets)
    profile_name = adapter.validate()  # a bad profile fails here, before anything listens
    sock = bind(port)
    bound = int(sock.getsockname()[1])
    keys = Keys()
    url = login_url(bound, keys)  # one-time: the server trades it for a session cookie
    launcher = state_dir(opts.root, opts.project) / f"ui-{bound}.html"
    hub = Hub(adapter, alive=process_alive)
    web = create_app(
        hub,
        port=bound,
        keys=keys,
        project=opts.project,
        profile=profile_name,
        on_login=lambda: launcher.unlink(missing_ok=True),
    )
    # flushed: whoever started us (a script, a test) reads the URL before we serve
    if as_json:  # one line, which a script reads before the server takes over
        said = {"url": url, "project": opts.project, "profile": profile_name}
        out.line(json.dumps(versioned(said)), flush=True)
    else:
        out.line(
            f"devenv ui for project {opts.project} (profile {profile_name}): {url}", flush=True
        )
        out.progress("the link signs one browser in, once; Ctrl-C stops the dashboard")
    if not no_browser:
        # beside the server: the socket already listens, and a console browser (BROWSER=w3m)
        # keeps webbrowser.open waiting until it is closed
        import threading

        def launch() -> None:
            try:
                opened = open_browser(url, launcher)
            except OSError as exc:  # the state directory is not writable, say
                out.progress(f"cannot open a browser ({exc.strerror}); open {url} yourself")
                return
            if not opened:
                out.progress(f"no browser found; open {url} yourself")

        threading.Thread(target=launch, name="devenv-ui-browser", daemon=True).start()
    try:
        serve(web, sock)
    except Interrupted:
        out.progress("stopped")
    finally:
        launcher.unlink(missing_ok=True)


def open_browser(url: str, launcher: Path) -> bool:
    """Open `url` without putting its token on a command line (`ps` shows those to every
    user): the browser gets a private file that forwards to it."""
    import html
    import os
    import webbrowser

    launcher.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(launcher, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        target = html.escape(url, quote=True)
        f.write(
            '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
            f'<meta http-equiv="refresh" content="0;url={target}">'
            f'<title>devenv ui</title><a href="{target}">open the dashboard</a>\n'
        )
    return webbrowser.open(launcher.as_uri())


def register(app: typer.Typer) -> None:
    app.command()(ui)
