"""The playground's Starlette application: the page (``static/``, KaTeX vendored in
``vendor/katex/``) and the JSON API (``POST /api/<operation>``), whose requests run in a
:class:`~rewrite.web.workers.WorkerPool`. Needs the optional extra ``tracegrad[web]``
(starlette, imported by :func:`create_app`; uvicorn serves it, see :mod:`rewrite.cli.serve`).

>>> ServeConfig().settings.max_chars, ServeConfig().hosts[:2]
(2000, ('127.0.0.1', 'localhost'))

Routes: ``GET /`` the page; ``GET /api/examples`` the Examples menu; ``GET /api/limits`` the
limits in force; ``POST /api/{gradient,hessian,hvp,jacobian,simplify,equivalent,variables,viz}``
a JSON object in, a JSON object out (docs/web.md). Errors are JSON ``{"error": {"kind",
"message", "position"}}``: 400 for the request's own errors, 404 for an unknown route, 413 for
a body over the size limit, 415 for a body that is not declared JSON, 503/504 when a worker
was lost or a deadline passed.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .api import EXAMPLES, OPERATIONS
from .settings import Settings
from .workers import WorkerPool, error

if TYPE_CHECKING:  # starlette is imported when an application is made, not with this module
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

HERE = Path(__file__).parent
STATIC = HERE / "static"
KATEX = HERE / "vendor" / "katex"

#: hosts a loopback server answers to (the Host header; guards against DNS rebinding)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

#: the page's Content-Security-Policy: nothing from another origin; the e-graph frame runs the
#: vendored Graphviz (WebAssembly) from an inline module script
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'")


@dataclass(frozen=True)
class ServeConfig:
    """The server's options (``tracegrad serve``): the per-request limits, the pool (``workers``
    processes, a ``deadline`` in seconds, an address-space cap per worker in MB), the largest
    request body in bytes, and the Host names answered (``("*",)``: any)."""

    settings: Settings = field(default_factory=Settings)
    workers: int = 2
    deadline: float = 20.0
    address_space_mb: float = 3072.0
    max_body: int = 16_384
    hosts: tuple[str, ...] = LOOPBACK_HOSTS


def json_error(status: int, kind: str, message: str) -> JSONResponse:
    """An error response."""
    from starlette.responses import JSONResponse

    return JSONResponse(error(kind, message), status_code=status)


class BodyTooLarge(Exception):
    """The request body is over the configured size."""


async def read_body(request: Request, cap: int) -> bytes:
    """The request body, reading at most ``cap`` bytes (:class:`BodyTooLarge` beyond)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge
    return bytes(body)


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response: no MIME sniffing, no
    referrer, the :data:`CSP`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-content-type-options", b"nosniff"),
                                                  (b"referrer-policy", b"no-referrer"),
                                                  (b"content-security-policy", CSP.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: ServeConfig | None = None, pool: WorkerPool | None = None) -> Starlette:
    """The application. Its worker pool starts with the application (lifespan) and stops with
    it; a ``pool`` given is used instead (and not closed). Imports starlette (the extra
    ``tracegrad[web]``)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    config = config or ServeConfig()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        own = pool is None
        state["pool"] = pool or await run_in_threadpool(
            WorkerPool, config.workers, config.settings, config.deadline, config.address_space_mb)
        try:
            yield
        finally:
            if own:
                await run_in_threadpool(state["pool"].close)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def examples(request: Request) -> Response:
        return JSONResponse({"examples": EXAMPLES})

    async def limits(request: Request) -> Response:
        return JSONResponse({**asdict(config.settings), "deadline": config.deadline,
                             "max_body": config.max_body, "workers": config.workers})

    async def operation(request: Request) -> Response:
        op = request.path_params["op"]
        if op not in OPERATIONS:
            return json_error(404, "not-found", f"no operation {op!r}; one of {', '.join(OPERATIONS)}")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return json_error(415, "request", "send the request as JSON (Content-Type: application/json)")
        try:
            body = await read_body(request, config.max_body)
        except BodyTooLarge:
            return json_error(413, "limit", f"the request body is over {config.max_body} bytes")
        try:
            payload = json.loads(body)
        except ValueError as e:
            return json_error(400, "request", f"the request body is not JSON: {e}")
        status, out = await run_in_threadpool(state["pool"].call, op, payload)
        return JSONResponse(out, status_code=status)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        kind = {404: "not-found", 405: "method-not-allowed"}.get(status, "request")
        return json_error(status, kind, str(getattr(exc, "detail", "")) or "error")

    routes = [
        Route("/", index),
        Route("/api/examples", examples),
        Route("/api/limits", limits),
        Route("/api/{op}", operation, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Mount("/vendor/katex", StaticFiles(directory=KATEX), name="katex"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(SecurityHeaders),
                                Middleware(TrustedHostMiddleware, allowed_hosts=list(config.hosts))],
                    exception_handlers={HTTPException: http_error})
    app.state.config = config
    app.state.workers = state
    return app
