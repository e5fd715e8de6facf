"""The dashboard's HTTP side: a Starlette app behind the request guard, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devenv.errors import DevenvError, PortConflictError
from devenv.ui import page
from devenv.ui.guard import (
    LOGIN_PARAM,
    LOGIN_PATH,
    TOKEN_HEADER,
    Keys,
    cookie_name,
    refusal,
    same,
)
from devenv.ui.hub import Hub, Subscriber, in_thread

STATIC = Path(__file__).with_name("static")
LOOPBACK = "127.0.0.1"
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"frame-ancestors 'none'; form-action 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class Guard:
    """ASGI middleware: 401/403 for any request the guard refuses; safety headers on all."""

    def __init__(self, app: ASGIApp, *, port: int, keys: Keys) -> None:
        self.app = app
        self.port = port
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import cookie_parser

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = cookie_parser(headers.get("cookie", ""))
        refused = refusal(
            scope["method"],
            scope["path"],
            host=headers.get("host"),
            origin=headers.get("origin"),
            token=headers.get(TOKEN_HEADER),
            cookie=cookies.get(cookie_name(self.port)),
            port=self.port,
            keys=self.keys,
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if refused is not None:
            word = "Unauthorized" if refused.status == 401 else "Forbidden"
            answer = PlainTextResponse(
                f"{refused.status} {word}: {refused.why}\n", status_code=refused.status
            )
            await answer(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


# After signing in, the page moves on to / by itself: a redirect would keep the navigation's
# cross-site start (a click in a terminal, the launcher file), and browsers then withhold a
# SameSite=Strict cookie from the redirected request.
SIGNED_IN = (
    '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/">'
    '<title>devenv ui</title><p>Signed in. <a href="/">Open the dashboard</a>.</p>\n'
)


class _Login:
    """`GET /login?token=...`: the one-time token of the printed link, exchanged once for the
    session cookie (HttpOnly, SameSite=Strict, named after this port); then on to /."""

    def __init__(self, port: int, keys: Keys, on_login: Callable[[], None] | None) -> None:
        self.cookie = cookie_name(port)
        self.keys = keys
        self.on_login = on_login
        self.used = False  # once exchanged, the link signs nobody in again

    async def respond(self, request: Request) -> Response:
        if not self.used and same(request.query_params.get(LOGIN_PARAM), self.keys.login):
            self.used = True
            response = HTMLResponse(SIGNED_IN)
            # no Domain: the cookie goes back to 127.0.0.1 only; no Max-Age: it ends with the
            # browser session, and its value is worthless once this server stops
            response.set_cookie(
                self.cookie, self.keys.session, path="/", httponly=True, samesite="strict"
            )
            if self.on_login is not None:
                self.on_login()
            return response
        if same(request.cookies.get(self.cookie), self.keys.session):
            return HTMLResponse(SIGNED_IN)  # signed in already: the link once more
        return PlainTextResponse(
            "401 Unauthorized: this sign-in link has been used already or is wrong; "
            "stop `devenv ui` and start it again for a new one\n",
            status_code=401,
        )


def create_app(
    hub: Hub,
    *,
    port: int,
    keys: Keys,
    project: str,
    profile: str,
    on_login: Callable[[], None] | None = None,
) -> Starlette:
    """The dashboard; `on_login` runs once, when the one-time link has been exchanged."""
    services = hub.engine.services
    login = _Login(port, keys, on_login)

    async def index(_request: Request) -> Response:
        html = page.render_page(
            project=project,
            profile=profile,
            token=keys.action,
            fragments=hub.latest,
            services=services,
            redact=hub.redact,
        )
        return HTMLResponse(hub.engine.redact(html))

    async def events(_request: Request) -> Response:
        shutdown = anyio.Event()

        async def close_on_shutdown(sub: Subscriber) -> None:
            await shutdown.wait()
            sub.close()

        async def stream() -> AsyncIterator[ServerSentEvent]:
            with hub.subscribe() as sub:
                # ending the stream ourselves completes the response; being cancelled would not
                closer = asyncio.ensure_future(close_on_shutdown(sub))
                try:
                    while (items := await sub.next()) is not None:
                        for name, text in items:
                            yield ServerSentEvent(data=text, event=name)
                finally:
                    closer.cancel()

        return EventSourceResponse(
            stream(), ping=15, shutdown_event=shutdown, shutdown_grace_period=1.0
        )

    async def logs(request: Request) -> Response:
        service = request.path_params["service"]
        if service not in services:
            return PlainTextResponse(f"unknown service {service!r}\n", status_code=404)
        try:
            lines = await in_thread(lambda: hub.engine.logs(service))
            html = page.render_logs(service, lines, redact=hub.redact)
        except DevenvError as exc:  # no container yet, or the engine is down
            html = page.render_logs(service, [], exc.one_line(), redact=hub.redact)
        return HTMLResponse(hub.engine.redact(html))

    def action(name: str) -> Response:
        if not hub.start(name):
            return JSONResponse({"error": f"busy: {hub.busy} is running"}, status_code=409)
        return JSONResponse({"started": name}, status_code=202)

    async def run_checks(_request: Request) -> Response:
        return action("checks")

    async def up(_request: Request) -> Response:
        return action("up")

    async def restart(request: Request) -> Response:
        service = request.path_params["service"]
        if service not in services:
            return JSONResponse({"error": f"unknown service {service!r}"}, status_code=404)
        return action(f"restart {service}")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        poller = asyncio.create_task(hub.poll_forever())
        hub.start("checks")  # the phase graph needs one run; the page shows it when done
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await hub.close()

    app = Starlette(
        routes=[
            Route("/", index),
            Route(LOGIN_PATH, login.respond),
            Route("/events", events),
            Route("/logs/{service}", logs),
            Route("/actions/checks", run_checks, methods=["POST"]),
            Route("/actions/up", up, methods=["POST"]),
            Route("/actions/restart/{service}", restart, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(Guard, port=port, keys=keys)
    return app


def bind(port: int | None) -> socket.socket:
    """A listening socket on 127.0.0.1: the given port, or a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port or 0))
    except OSError as exc:
        sock.close()
        raise PortConflictError(
            f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}",
            hint="choose another --port, or leave it out for a free one",
        ) from exc
    sock.listen(128)
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Run until SIGINT or SIGTERM; open event streams are ended on the way out."""
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    uvicorn.Server(config).run(sockets=[sock])
