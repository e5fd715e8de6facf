"""`devenv ui`: serve the live dashboard from this process on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from devenv.cli.main import JsonOpt, ProfileOpt, ProjectOpt, SetOpt


def ui(
    project: ProjectOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port on 127.0.0.1 (default: a free one).")
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL, do not open a browser.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve a live dashboard of the stack, the checks and the phase graph on 127.0.0.1."""
    from devenv.cli.main import _emit, _options, _remember_secrets, progress
    from devenv.errors import Interrupted
    from devenv.ui.adapter import Adapter, process_alive
    from devenv.ui.guard import new_token
    from devenv.ui.hub import Hub
    from devenv.ui.server import bind, create_app, serve

    options = _options(project, profile, sets)
    _remember_secrets(options)
    adapter = Adapter(options)
    profile_name = adapter.validate()  # a bad profile fails here, before anything listens
    sock = bind(port)
    bound = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{bound}/"
    hub = Hub(adapter, alive=process_alive)
    app = create_app(
        hub, port=bound, token=new_token(), project=options.project, profile=profile_name
    )
    if as_json:
        # one line, so that a script can read it before the server takes over
        _emit(json.dumps({"url": url, "project": options.project, "profile": profile_name}))
    else:
        _emit(f"devenv ui for project {options.project} (profile {profile_name}): {url}")
        progress("Ctrl-C stops it")
    sys.stdout.flush()  # whoever started us (a script, a test) reads the URL before we serve
    if not no_browser:
        import webbrowser

        if not webbrowser.open(url):
            progress(f"no browser found; open {url} yourself")
    try:
        serve(app, sock)
    except Interrupted:
        progress("stopped")
