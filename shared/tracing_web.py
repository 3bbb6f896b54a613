"""The web side of `shared.tracing`: one SERVER span per HTTP request, a child of the request's W3C
`traceparent` (a new trace when it has none), named by method and route template (`POST /v1/residents`),
with the response's status. No query string and no header goes into it. `/healthz`, `/readyz` and
`/metrics` are not traced.

Tracing off, the request's `traceparent`, if any, is only made current (see `shared.tracing`). A few lines
of ASGI rather than opentelemetry-instrumentation-asgi: that adds four packages and spans per send and
receive; this is the one span we need, and it costs a header scan when tracing is off."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing

SKIPPED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class TracingMiddleware:
    def __init__(
        self, app: ASGIApp, skip_paths: Iterable[str] = SKIPPED_PATHS, trust_incoming: bool = True
    ) -> None:
        self.app = app
        self.skip_paths = frozenset(skip_paths)
        self.trust_incoming = trust_incoming  # False at the public edge: a client's headers start nothing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        traceparent = tracestate = None
        for name, value in scope["headers"] if self.trust_incoming else ():
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":
                tracestate = value.decode("latin-1")
        parent = tracing.extract(traceparent, tracestate) if traceparent else None
        if not tracing.enabled():
            if parent is None:
                await self.app(scope, receive, send)
            else:
                with tracing.attached(parent):
                    await self.app(scope, receive, send)
            return

        method = scope["method"]
        status = 0

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.span(
            method,
            SpanKind.SERVER,
            parent=parent or tracing.ROOT,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
        ) as span:
            try:
                await self.app(scope, receive, noting_send)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status or 500)  # nothing sent: 500
                if not status or status >= 500:
                    span.set_status(StatusCode.ERROR)
