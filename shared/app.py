"""The HTTP faces of the two roles. `create_service_app` builds a service's web role: its routers,
health, readiness, metrics, request ids and problem+json, and nothing in the background that talks to
Kafka. `create_worker_app` wraps the worker role (shared/worker.py): probes and metrics only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator

from shared.access_log import AccessLogMiddleware
from shared.auth import TokenVerifier
from shared.db import Database
from shared.guard import RequestGuard
from shared.http_metrics import HttpMetrics
from shared.logging import configure_logging
from shared.outbox import watch_outbox
from shared.problems import PROBLEM_JSON, document_problems, install_problem_handlers
from shared.settings import EventServiceSettings, ServiceSettings
from shared.tracing import configure_tracing
from shared.tracing_web import TracingMiddleware
from shared.worker import Worker, service_database


def create_service_app(
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    title: str | None = None,
    state: dict[str, Any] | None = None,
    openapi_url: str = "/openapi.json",
    docs_url: str | None = "/docs",
    cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    trust_trace_headers: bool = True,
) -> FastAPI:
    """`trust_trace_headers=False` at the public edge (the gateway): a client's `traceparent` is ignored
    and every request starts its own trace, so no caller can put its own text into the events.

    The web role: HTTP only. The one background task is the outbox-backlog gauge of a service with an
    outbox (one cheap query every 15 s), kept here on purpose: the backlog is the alarm for a worker that is
    down, so it must not be measured only by the worker."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    configure_tracing(settings.service_name, settings)
    db = service_database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = None
        if isinstance(settings, EventServiceSettings):  # a service with an outbox
            watcher = asyncio.create_task(watch_outbox(db), name="outbox-metrics")
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.wait([watcher], timeout=1)
            if cleanup is not None:
                await cleanup()
            await db.dispose()

    app = FastAPI(
        title=title or settings.service_name,
        lifespan=lifespan,
        openapi_url=openapi_url,
        docs_url=docs_url,
        telemetry={"tracing": False},  # TracingMiddleware's spans, never FastAPI's own (they hold the query)
    )
    app.state.settings = settings
    app.state.db = db
    app.state.verifier = TokenVerifier.from_json(settings.jwks_text(), settings.auth_jwks_url)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes)  # inside: it sees the request id
    app.add_middleware(AccessLogMiddleware)  # between: request id set; logs the guard's 413/422/500 as sent
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    app.add_middleware(
        TracingMiddleware, trust_incoming=trust_trace_headers
    )  # outside the three: covers them
    app.add_middleware(HttpMetrics, excluded=["/metrics", "/healthz", "/readyz"])  # outermost, as before
    install_problem_handlers(app)
    Instrumentator().expose(app, include_in_schema=False)  # /metrics; the series are HttpMetrics'

    add_probes(app, db)
    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def add_probes(app: FastAPI, db: Database) -> None:
    """GET /healthz (the process answers) and GET /readyz (its database answers), on either role."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready when the process can do its work: its database answers. The broker is not checked: the
        outbox exists so that writes go on while Kafka is away (its loss shows in the relay's and consumers'
        metrics and logs), and failing readiness then would take every pod out of the load balancer (and
        restart no worker into a better state)."""
        ok = False
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                async with db.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            ok = True
        body: dict[str, Any] = {"status": "ready" if ok else "not-ready", "checks": {"database": ok}}
        if not ok:
            body.update(
                type="https://yigongti.example/problems/not-ready",
                title="服务未就绪 / Service not ready",
                status=503,
            )
        return JSONResponse(body, status_code=200 if ok else 503, media_type=None if ok else PROBLEM_JSON)


def create_worker_app(worker: Worker) -> FastAPI:
    """The worker role's HTTP face (`python -m services.<name> worker`): its lifespan runs the worker, and it
    answers only the probes and Prometheus' scrape (relay, consumer lag, sweeps, retention)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with worker:
            yield

    app = FastAPI(
        title=f"{worker.settings.service_name} worker", lifespan=lifespan, openapi_url=None, docs_url=None
    )
    app.state.worker = worker
    add_probes(app, worker.db)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
