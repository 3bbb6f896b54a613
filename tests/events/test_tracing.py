"""Traces (shared/tracing.py) from a request through the outbox and Kafka to a consumer, on the real
PostgreSQL and broker; only the span exporter is a test double (the SDK's in-memory one). And with tracing
off (no OTLP endpoint): nothing recorded, only a `traceparent` that came in is passed on."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
import uvicorn
from aiokafka import ConsumerRecord
from httpx import ASGITransport, AsyncClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.gateway import models as gm
from services.gateway.app import create_app as create_gateway_app
from services.gateway.auth import hasher
from services.gateway.settings import GatewaySettings
from services.registry.app import create_app as create_registry_app
from services.registry.models import inbox
from shared import tracing
from shared.clock import FixedClock
from shared.consumer import IdempotentConsumer
from shared.contracts.registry import TOPICS
from shared.db import Database, collect
from shared.events import EventEnvelope, OutgoingEvent
from shared.migrations import upgrade
from shared.outbox import OutboxRelay

from ..conftest import KAFKA, NOW, PG, REDIS, REGISTRY_DB, isolated_name, recreate_database, registry_settings
from ..eventually import eventually

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
INCOMING = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
COMMUNITIES = TOPICS["community"]
GATEWAY_MIGRATIONS = Path(__file__).parents[2] / "services/gateway/migrations"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, its spans kept in memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("tracing-test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.reset_tracing()


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.force_flush()
    return list(exporter.get_finished_spans())


def hex_ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) as in a traceparent."""
    assert span.context is not None
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}", parent


def one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"{what}: {[s.name for s in found]}"
    return found[0]


async def add_region(client: AsyncClient, prefix: str = "") -> None:
    for body in (
        {"code": "410000", "name": "河南省", "level": "province"},
        {"code": "411081", "name": "禹州市", "level": "county", "parent_code": "410000"},
    ):
        r = await client.post(f"{prefix}/v1/regions", json=body)
        assert r.status_code == 201, r.text


async def add_community(client: AsyncClient, prefix: str = "", **headers: str) -> str:
    r = await client.post(
        f"{prefix}/v1/communities",
        json={"code": f"C{uuid.uuid4().hex[:6]}", "name": "人民医院医共体", "county_code": "411081"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def envelope_of(engine: AsyncEngine, community: str) -> dict[str, Any]:
    """The outbox row's envelope of the community's event."""
    async with engine.connect() as conn:
        payload = await conn.scalar(
            sa.text("SELECT payload FROM outbox WHERE topic = :t AND key = :k ORDER BY seq DESC LIMIT 1"),
            {"t": COMMUNITIES, "k": community},
        )
    assert payload is not None, "no outbox row"
    return payload if isinstance(payload, dict) else dict(json.loads(payload))


async def consume(event_id: str) -> str:
    """Consume the communities topic with an IdempotentConsumer of a fresh group until the event is applied;
    the trace id current in its handler."""
    seen: dict[str, str] = {}

    async def handler(session: AsyncSession, event: EventEnvelope) -> None:
        seen[event.id] = f"{trace.get_current_span().get_span_context().trace_id:032x}"

    db = Database(REGISTRY_DB)
    consumer = IdempotentConsumer(
        db, inbox, KAFKA, f"test-tracing-{uuid.uuid4().hex[:8]}", [COMMUNITIES], handler
    )
    task = asyncio.create_task(consumer.run_forever())
    try:
        return str(await eventually(lambda: seen.get(event_id), "the event consumed"))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.dispose()


async def test_a_requests_trace_reaches_the_outbox_kafka_and_the_consumer(
    spans: InMemorySpanExporter, client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    await add_region(client)
    community = await add_community(client, traceparent=INCOMING)

    server = one([s for s in finished(spans) if s.name == "POST /v1/communities"], "the request's span")
    assert server.kind == SpanKind.SERVER and server.attributes is not None
    assert server.attributes["http.route"] == "/v1/communities"
    assert server.attributes["http.response.status_code"] == 201
    assert hex_ids(server)[0] == TRACE_ID and hex_ids(server)[2] == CALLER_SPAN  # the caller's child
    envelope = await envelope_of(registry_engine, community)
    created = one([s for s in finished(spans) if s.name == f"create {COMMUNITIES}"], "the event's span")
    assert hex_ids(created)[2] == hex_ids(server)[1]
    assert envelope["traceparent"] == f"00-{TRACE_ID}-{hex_ids(created)[1]}-01"

    assert await OutboxRelay(REGISTRY_DB, KAFKA).drain() >= 1
    batch = one(
        [
            s
            for s in finished(spans)
            if s.name == f"publish {COMMUNITIES}"
            and (TRACE_ID, hex_ids(created)[1])
            in {(f"{k.context.trace_id:032x}", f"{k.context.span_id:016x}") for k in s.links}
        ],
        "the relay's batch, linked to the event's span",
    )
    assert batch.kind == SpanKind.PRODUCER
    assert hex_ids(batch)[0] != TRACE_ID  # a batch is a trace of its own, linked to its events'

    assert await consume(envelope["id"]) == TRACE_ID
    processed = [
        s
        for s in finished(spans)
        if s.name == f"process {COMMUNITIES}"
        and s.attributes is not None
        and s.attributes["messaging.message.id"] == envelope["id"]
    ]
    assert processed and all(s.kind == SpanKind.CONSUMER for s in processed)
    assert {hex_ids(s)[0] for s in processed} == {TRACE_ID}
    assert {hex_ids(s)[2] for s in processed} == {hex_ids(created)[1]}  # the child of the event's span


async def test_without_an_endpoint_nothing_is_recorded_and_only_an_incoming_traceparent_is_passed_on(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    tracing.reset_tracing()  # as without OTEL_EXPORTER_OTLP_ENDPOINT, whatever the tests' environment says
    await add_region(client)
    plain = await add_community(client)
    assert "traceparent" not in await envelope_of(registry_engine, plain)
    correlated = await add_community(client, traceparent=INCOMING, tracestate="vendor=1")
    envelope = await envelope_of(registry_engine, correlated)
    assert envelope["traceparent"] == INCOMING and envelope["tracestate"] == "vendor=1"  # as it came
    bad = await add_community(client, traceparent="00-not-a-trace-context")
    assert "traceparent" not in await envelope_of(registry_engine, bad)


async def test_a_consumed_events_context_passes_to_the_events_its_handler_raises(
    registry_db: str, registry_engine: AsyncEngine
) -> None:
    """Off, the envelope's context as it came; on, a child of the consumer's `process` span. (The handler
    runs on the real database; the record is handed to the consumer directly.)"""
    topic = f"test.tracing.{uuid.uuid4().hex[:8]}"

    async def handler(session: AsyncSession, event: EventEnvelope) -> None:
        raised = EventEnvelope(type="test.raised", source="/test", subject=event.id, data={})
        collect(session, OutgoingEvent(topic, event.id, raised))

    async def consumed() -> dict[str, Any]:
        incoming = EventEnvelope(type="test.in", source="/test", subject="x", data={}, traceparent=INCOMING)
        value = incoming.to_bytes()
        await consumer.handle(ConsumerRecord(topic, 0, 0, 0, 0, b"k", value, None, 1, len(value), ()))
        async with registry_engine.connect() as conn:
            payload = await conn.scalar(
                sa.text("SELECT payload FROM outbox WHERE topic = :t AND key = :k"),
                {"t": topic, "k": incoming.id},
            )
        return payload if isinstance(payload, dict) else dict(json.loads(payload))

    db = Database(REGISTRY_DB)
    consumer = IdempotentConsumer(db, inbox, KAFKA, f"test-tracing-{uuid.uuid4().hex[:8]}", [topic], handler)
    exporter = InMemorySpanExporter()
    try:
        tracing.reset_tracing()
        assert (await consumed())["traceparent"] == INCOMING
        tracing.configure_tracing("tracing-test", exporter=exporter)
        raised = await consumed()
        process = one([s for s in finished(exporter) if s.name == f"process {topic}"], "the consumer's span")
        create = one(
            [s for s in finished(exporter) if s.name == f"create {topic}"], "the raised event's span"
        )
        assert (hex_ids(process)[0], hex_ids(process)[2]) == (TRACE_ID, CALLER_SPAN) and hex_ids(create)[
            2
        ] == hex_ids(process)[1]
        assert raised["traceparent"] == f"00-{TRACE_ID}-{hex_ids(create)[1]}-01"
    finally:
        tracing.reset_tracing()
        async with registry_engine.begin() as conn:  # no relay is to publish to this topic
            await conn.execute(sa.text("DELETE FROM outbox WHERE topic = :t"), {"t": topic})
        await db.dispose()


def test_an_envelope_without_trace_context_reads_and_writes_as_before() -> None:
    old = b'{"specversion":"1.0","id":"e1","type":"t","source":"/s","subject":"x","data":{"a":null}}'
    envelope = EventEnvelope.from_bytes(old)
    assert envelope.traceparent is None and envelope.tracestate is None
    assert json.loads(envelope.to_bytes()).keys() == {
        "specversion",
        "id",
        "type",
        "source",
        "subject",
        "time",
        "datacontenttype",
        "schemaversion",
        "data",
    }
    assert json.loads(envelope.to_bytes())["data"] == {"a": None}
    with_context = EventEnvelope.from_bytes(envelope.model_copy(update={"traceparent": INCOMING}).to_bytes())
    assert with_context.traceparent == INCOMING


def test_the_environment_turns_export_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.configure_tracing("registry") and not tracing.enabled()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.configure_tracing("registry")
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "registry-eu")
    try:
        assert tracing.configure_tracing("registry", registry_settings(environment="staging"))
        provider = tracing._state.provider
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "registry-eu"
        assert provider.resource.attributes["deployment.environment.name"] == "staging"
        processors = provider._active_span_processor._span_processors
        assert [type(p) for p in processors] == [BatchSpanProcessor]
        exporter = processors[0]._batch_processor._exporter  # type: ignore[attr-defined]
        assert isinstance(exporter, OTLPSpanExporter)
        assert exporter._endpoint == "http://collector.example:4318/v1/traces"
        assert tracing.configure_tracing("other")  # once per process: the first call's provider stays
        assert tracing._state.provider is provider
    finally:
        tracing.reset_tracing()
    assert not tracing.enabled()


@pytest_asyncio.fixture
async def gateway_and_registry(registry_db: str, clean_registry: None) -> AsyncIterator[AsyncClient]:
    """An in-process gateway whose registry is the registry app served by uvicorn on a socket of its own
    (the gateway reaches it over HTTP, as in production); a client logged in at the gateway."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    database = isolated_name("gateway_tracing_test")
    await recreate_database(database)
    await asyncio.to_thread(upgrade, GATEWAY_MIGRATIONS, f"{PG}/{database}")
    gateway = create_gateway_app(
        GatewaySettings(
            database_url=f"{PG}/{database}",
            log_json=False,
            log_level="WARNING",
            registry_url=f"http://127.0.0.1:{port}",
            redis_url=REDIS,
            key_secret=base64.b64encode(os.urandom(32)).decode(),
        )
    )
    async with gateway.state.db.uow() as uow:
        uow.session.add(
            gm.User(username="admin", password_hash=hasher.hash("admin-pass"), role="commission_admin")
        )
        await uow.commit()
    client = AsyncClient(transport=ASGITransport(app=gateway), base_url="http://gateway")
    r = await client.post(
        "/oauth/token", data={"grant_type": "password", "username": "admin", "password": "admin-pass"}
    )
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    registry = create_registry_app(registry_settings(auth_jwks=json.dumps(jwks)), clock=FixedClock(NOW))
    server = uvicorn.Server(uvicorn.Config(registry, log_config=None, access_log=False, lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, "the registry serving")
        yield client
    finally:
        await client.aclose()
        await gateway.state.audit.close()
        await gateway.state.upstreams.close()
        await gateway.state.limiter.close()
        await gateway.state.db.dispose()
        server.should_exit = True
        await serving
        sock.close()


async def test_the_gateway_passes_its_trace_to_the_service(
    spans: InMemorySpanExporter, gateway_and_registry: AsyncClient, registry_engine: AsyncEngine
) -> None:
    """The gateway is the public edge: a client's `traceparent` is not trusted (it would put the client's
    own text into every event), so the trace starts at the gateway and goes on into the service."""
    client = gateway_and_registry
    await add_region(client, "/api/registry")
    community = await add_community(client, "/api/registry", traceparent=INCOMING)

    done = finished(spans)
    assert not [s for s in done if hex_ids(s)[0] == TRACE_ID]  # the client's trace id went nowhere
    service = one([s for s in done if s.name == "POST /v1/communities"], "the service's span")
    trace = hex_ids(service)[0]
    gateway = one(
        [s for s in done if s.name == "POST /api/{service}/{path:path}" and hex_ids(s)[0] == trace],
        "the gateway's span",
    )
    created = one([s for s in done if s.name == f"create {COMMUNITIES}" and hex_ids(s)[0] == trace], "event")
    assert gateway.kind == service.kind == SpanKind.SERVER
    assert gateway.parent is None  # a new trace, not the caller's
    assert hex_ids(service)[2] == hex_ids(gateway)[1]  # over HTTP: the gateway sent its traceparent
    assert hex_ids(created)[2] == hex_ids(service)[1]
    envelope = await envelope_of(registry_engine, community)
    assert envelope["traceparent"].startswith(f"00-{trace}-{hex_ids(created)[1]}-")  # sampled flags follow
