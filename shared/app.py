"""The app factory every service uses: health, readiness, metrics, request ids, problem+json, and
the background workers (outbox relay, event consumers) started and stopped with the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator

from shared.auth import TokenVerifier
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.guard import RequestGuard
from shared.idempotency import ttl_seconds
from shared.logging import configure_logging
from shared.outbox import OutboxRelay, watch_outbox
from shared.problems import PROBLEM_JSON, document_problems, install_problem_handlers
from shared.retention import purge_forever
from shared.settings import ServiceSettings

ConsumerFactory = Callable[[Database], Sequence[IdempotentConsumer]]
WorkerFactory = Callable[[FastAPI], Sequence[Coroutine[Any, Any, None]]]


def create_service_app(
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    consumers: ConsumerFactory | None = None,
    title: str | None = None,
    state: dict[str, Any] | None = None,
    workers: WorkerFactory | None = None,
    openapi_url: str = "/openapi.json",
    docs_url: str | None = "/docs",
    cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    publishes_events: bool = True,
) -> FastAPI:
    """`publishes_events=False` for an app with no outbox to relay (the gateway): it never talks to Kafka."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    db = Database(
        settings.database_url,
        settings.db_pool_size,
        settings.db_statement_timeout_ms,
        settings.db_lock_timeout_ms,
    )
    relay = OutboxRelay(
        settings.database_url, settings.kafka_bootstrap_servers, poll_seconds=settings.outbox_poll_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        consumers_ = list(consumers(db)) if (consumers and settings.run_workers) else []
        if publishes_events:  # in every process, relay or not: each /metrics shows its database's backlog
            tasks.append(asyncio.create_task(watch_outbox(db), name="outbox-metrics"))
        if settings.run_workers:
            if publishes_events:
                tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))
            tasks += [asyncio.create_task(c.run_forever(), name=c.group_id) for c in consumers_]
            tasks += [asyncio.create_task(w) for w in (workers(app) if workers else [])]
            purge = purge_forever(
                db,
                ttl_seconds(settings),
                outbox_seconds=settings.outbox_retention_seconds,
                inbox_seconds=settings.inbox_retention_seconds,
            )
            tasks.append(asyncio.create_task(purge, name="retention"))
        app.state.consumers = consumers_
        try:
            yield
        finally:
            relay.stop()
            for task in tasks:
                task.cancel()
            if tasks:  # bounded: a worker that ignores its cancellation must not hold up SIGTERM
                done, _ = await asyncio.wait(tasks, timeout=3)
                for task in done:  # collect what they raised (already logged where it happened)
                    _ = task.cancelled() or task.exception()
            if settings.run_workers and publishes_events:  # flush what committed while we were stopping
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(relay.drain(), 3)
            if cleanup is not None:
                await cleanup()
            await db.dispose()

    app = FastAPI(
        title=title or settings.service_name, lifespan=lifespan, openapi_url=openapi_url, docs_url=docs_url
    )
    app.state.settings = settings
    app.state.db = db
    app.state.relay = relay
    app.state.verifier = TokenVerifier.from_json(settings.jwks_text(), settings.auth_jwks_url)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes)  # inside: it sees the request id
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    install_problem_handlers(app)
    Instrumentator(excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(app).expose(
        app, include_in_schema=False
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready when the service can serve: its database answers. The broker is not checked: the outbox
        exists so that writes go on while Kafka is away (its loss shows in the relay's and consumers'
        metrics and logs), and failing readiness then would take every pod out of the load balancer."""
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

    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
