"""What a client gets when something goes wrong inside a service: an unexpected exception is a problem+json
500 carrying the request id (never plain text); a database error is classed by its SQLSTATE (the client's data:
422; the database really down or timing out: 503 with Retry-After; contention: 409). Real PostgreSQL errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest_asyncio
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

from shared.app import create_service_app
from shared.db import Database
from shared.settings import EventServiceSettings

from ..conftest import KAFKA, PG

router = APIRouter()


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug nobody foresaw")


@router.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@router.get("/sql")
async def run_sql(request: Request, statement: str, timeout_ms: int = 0) -> dict[str, int]:
    """Runs one of a few fixed statements (chosen by name) on the app's real database."""
    statements = {
        "divide": "SELECT 1/0",
        "cast": "SELECT 'x'::int",
        "nul": "SELECT cast(:v as text)",
        "sleep": "SELECT pg_sleep(1)",
        "missing": "SELECT * FROM no_such_table",
        "locked": "SELECT * FROM test_locked FOR UPDATE",
    }
    db: Database = request.app.state.db
    async with db.read() as s:
        if timeout_ms:
            await s.execute(sa.text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        await s.execute(sa.text(statements[statement]), {"v": "a\x00b"} if statement == "nul" else {})
    return {"ok": 1}


def make_app(database_url: str, kafka: str = KAFKA, **overrides: object) -> FastAPI:
    settings = EventServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka,
        log_json=False,
        **overrides,  # type: ignore[arg-type]
    )
    return create_service_app(settings, [router], max_body_bytes=1000)


app = make_app(f"{PG}/postgres")


@pytest_asyncio.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as c:
        yield c


async def test_an_unexpected_exception_is_a_problem_500_with_the_request_id(client: AsyncClient) -> None:
    r = await client.get("/boom", headers={"X-Request-ID": "0f2b8a4c-9d1e-4c61-9a55-6b1f3d0e7a21"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["request_id"] == "0f2b8a4c-9d1e-4c61-9a55-6b1f3d0e7a21" == r.headers["x-request-id"]
    assert body["title_zh"] and body["title_en"] and "a bug nobody foresaw" not in r.text


async def test_database_errors_are_classed_by_sqlstate(client: AsyncClient) -> None:
    for statement in ("divide", "cast", "nul"):  # SQLSTATE 22: the data, i.e. the client's input
        r = await client.get("/sql", params={"statement": statement})
        assert r.status_code == 422 and r.json()["type"].endswith("/invalid-data"), (statement, r.text)
    timed_out = await client.get("/sql", params={"statement": "sleep", "timeout_ms": 50})
    assert timed_out.status_code == 503 and timed_out.headers["Retry-After"] == "2"
    ours = await client.get("/sql", params={"statement": "missing"})  # 42P01: our bug, not the client's
    assert ours.status_code == 500 and ours.headers["content-type"] == "application/problem+json"


async def test_a_database_that_is_down_is_a_503() -> None:
    down = make_app("postgresql+asyncpg://postgres@127.0.0.1:9/postgres")  # nothing listens on port 9
    try:
        async with AsyncClient(transport=ASGITransport(app=down), base_url="http://t") as c:
            r = await c.get("/sql", params={"statement": "divide"})
        assert r.status_code == 503 and r.json()["type"].endswith("/database-unavailable")
        assert r.headers["Retry-After"] == "2"
    finally:
        await down.state.db.dispose()


async def test_bodies_over_the_limit_are_413_declared_or_streamed(client: AsyncClient) -> None:
    assert (await client.post("/echo", content=b"x" * 1000)).json() == {"size": 1000}
    declared = await client.post("/echo", content=b"x" * 1001)
    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check up front
        for _ in range(5):
            yield b"x" * 400

    streamed = await client.post("/echo", content=chunks())
    assert streamed.status_code == 413 and streamed.headers["content-type"] == "application/problem+json"


async def test_a_nul_in_the_url_is_a_422_before_any_route(client: AsyncClient) -> None:
    r = await client.get("/sql", params={"statement": "divide", "q": "a\x00b"})
    assert r.status_code == 422 and r.json()["type"].endswith("/unstorable-text")
    assert (await client.get("/bo%00om")).status_code == 422


async def test_readiness_means_the_database_answers_whatever_the_broker_does() -> None:
    """A broker outage must not take every pod out of the load balancer: the outbox keeps writes going."""
    no_broker = make_app(f"{PG}/postgres", kafka="127.0.0.1:9")
    no_database = make_app("postgresql+asyncpg://postgres@127.0.0.1:9/postgres")
    try:
        async with AsyncClient(transport=ASGITransport(app=no_broker), base_url="http://t") as c:
            r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"] == {"database": True}
        async with AsyncClient(transport=ASGITransport(app=no_database), base_url="http://t") as c:
            r = await c.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    finally:
        await no_broker.state.db.dispose()
        await no_database.state.db.dispose()


async def test_no_statement_and_no_lock_wait_hangs() -> None:
    """The service's own timeouts (settings), not a client's patience, end a stuck statement or lock wait:
    a lock held elsewhere is a 409 with Retry-After after DB_LOCK_TIMEOUT_MS, a slow statement a 503."""
    impatient = make_app(f"{PG}/postgres", db_statement_timeout_ms=300, db_lock_timeout_ms=200)
    holder = create_async_engine(f"{PG}/postgres")
    try:
        async with holder.connect() as conn:
            await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS test_locked (n int)"))
            await conn.execute(
                sa.text("INSERT INTO test_locked SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM test_locked)")
            )
            await conn.commit()
            await conn.execute(sa.text("SELECT * FROM test_locked FOR UPDATE"))  # held until the end
            async with AsyncClient(transport=ASGITransport(app=impatient), base_url="http://t") as c:
                t0 = time.monotonic()
                locked = await c.get("/sql", params={"statement": "locked"})
                assert locked.status_code == 409 and locked.headers["Retry-After"] == "1", locked.text
                slow = await c.get("/sql", params={"statement": "sleep"})
                assert slow.status_code == 503 and slow.headers["Retry-After"] == "2"
                assert time.monotonic() - t0 < 3
            await conn.rollback()
    finally:
        await holder.dispose()
        await impatient.state.db.dispose()
