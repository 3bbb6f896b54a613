"""The access log: one line per HTTP request, logger `access`, event `request`.

Fields: `method`, `path` (never the query string: queries carry national IDs and phone numbers), `route`
(the matched template, `/v1/residents/{ident}`, or null when nothing matched), `status`, `duration_ms`,
`bytes` (response body), `client` (address, after uvicorn's proxy headers), plus `request_id`, `service`
and the rest from shared.logging. `/healthz`, `/readyz` and `/metrics` are not logged. A request whose
app raised is logged as 500 with `error` (the exception's type) unless its response had already started.

It runs inside CorrelationIdMiddleware (so the request id is set) and outside the request guard (so the
guard's 413, 422 and 500 are logged as the client saw them)."""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SKIPPED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = structlog.get_logger("access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, skip_paths: Iterable[str] = SKIPPED_PATHS) -> None:
        self.app = app
        self.skip_paths = frozenset(skip_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 0
        size = 0

        async def noting_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error = None
        try:
            await self.app(scope, receive, noting_send)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            client = scope.get("client")
            route = scope.get("route")
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=getattr(route, "path", None),
                status=status or 500,  # nothing sent: the server answers 500
                duration_ms=round((perf_counter() - started) * 1000, 3),
                bytes=size,
                client=client[0] if client else None,
                **({"error": error} if error else {}),
            )
