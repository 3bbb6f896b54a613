"""The HTTP metrics of every service: the five series prometheus-fastapi-instrumentator's default set
exports (same names, labels and buckets, so dashboards and alerts do not move), recorded by a few lines of
ASGI instead of its middleware, which built a Starlette `Request`, matched every route itself before the
request, and a `Response` and `Headers` after it (about a tenth of a plain GET's CPU).

- `http_requests_total` (method, status as `2xx`…, handler), `http_request_size_bytes` and
  `http_response_size_bytes` (handler; the Content-Length headers), `http_request_duration_highr_seconds`
  (no labels), `http_request_duration_seconds` (method, handler).
- `handler` is the matched route's template (`/v1/residents/{ident}`); a request no route answered (a 404,
  or refused by the guard before routing) is matched against the routes here, as the library did, and is
  `none` when nothing matches. Handlers matching `excluded` (regular expressions) are not recorded.

The metrics are module-level: the default registry refuses a second series of the same name, and tests
build several apps in one process. `/metrics` itself is still exposed by the instrumentator."""

from __future__ import annotations

import re
from collections.abc import Iterable
from time import perf_counter

from prometheus_client import Counter, Histogram, Summary
from prometheus_fastapi_instrumentator import routing
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOTAL = Counter(
    "http_requests_total",
    "Total number of requests by method, status and handler.",
    ("method", "status", "handler"),
)
IN_SIZE = Summary(
    "http_request_size_bytes",
    "Content length of incoming requests by handler. Only value of header is respected. Otherwise ignored. "
    "No percentile calculated. ",
    ("handler",),
)
OUT_SIZE = Summary(
    "http_response_size_bytes",
    "Content length of outgoing responses by handler. Only value of header is respected. Otherwise ignored. "
    "No percentile calculated. ",
    ("handler",),
)
LATENCY_HIGHR = Histogram(
    "http_request_duration_highr_seconds",
    "Latency with many buckets but no API specific labels. Made for more accurate percentile calculations. ",
    buckets=(
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        1.5,
        2,
        2.5,
        3,
        3.5,
        4,
        4.5,
        5,
        7.5,
        10,
        30,
        60,
    ),
)
LATENCY_LOWR = Histogram(
    "http_request_duration_seconds",
    "Latency with only few buckets by handler. Made to be only used if aggregation by handler is important. ",
    ("method", "handler"),
    buckets=(0.1, 0.5, 1),
)


def _length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


class HttpMetrics:
    def __init__(self, app: ASGIApp, excluded: Iterable[str] = ()) -> None:
        self.app = app
        self.excluded = [re.compile(pattern) for pattern in excluded]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500
        out_size = 0

        async def noting_send(message: Message) -> None:
            nonlocal status, out_size
            if message["type"] == "http.response.start":
                status = message["status"]
                out_size = _length(message.get("headers") or ())
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            duration = max(perf_counter() - started, 0.0)
            route = getattr(scope.get("route"), "path", None)
            if route is None:  # nothing routed it (404, the guard's refusals): match it as the library did
                route = routing.get_route_name(HTTPConnection(scope), should_include_root_path=False)
            handler = route if route is not None else scope["path"]
            if not any(pattern.search(handler) for pattern in self.excluded):
                handler = handler if route is not None else "none"
                method = scope["method"]
                TOTAL.labels(method, f"{str(status)[0]}xx", handler).inc()
                IN_SIZE.labels(handler).observe(_length(scope["headers"]))
                OUT_SIZE.labels(handler).observe(out_size)
                LATENCY_HIGHR.observe(duration)
                LATENCY_LOWR.labels(method, handler).observe(duration)
