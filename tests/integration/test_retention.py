"""Retention of the outbox and the inbox on the real PostgreSQL: only what is old goes — published outbox
rows past their window (never an unpublished one, however old), inbox rows past theirs — in bounded
batches, by the background job on its period, counted in its metric.

A database of its own (the registry's migrations), so the rows here are the only ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
import sqlalchemy as sa
from prometheus_client import REGISTRY

from shared.db import Database
from shared.retention import purge_forever, purge_inbox, purge_once, purge_published_outbox

from ..conftest import PG, REGISTRY_MIGRATIONS, counts_by, isolated_name, migrated_database
from ..eventually import eventually

RETENTION_DB = f"{PG}/{isolated_name('retention_test')}"
DAY = 86_400
WEEK, MONTH = 7 * DAY, 30 * DAY


@pytest_asyncio.fixture(scope="module")
async def module_db() -> AsyncIterator[Database]:
    await migrated_database(RETENTION_DB, REGISTRY_MIGRATIONS, [])
    database = Database(RETENTION_DB)
    yield database
    await database.dispose()


@pytest_asyncio.fixture
async def db(module_db: Database) -> Database:
    async with module_db.engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE outbox, inbox"))
    return module_db


async def add_outbox(db: Database, label: str, n: int, created_ago: int, published_ago: int | None) -> None:
    """`n` outbox rows (in seq order) created `created_ago` seconds ago and published `published_ago`
    seconds ago (None: not published)."""
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO outbox (event_id, topic, key, payload, created_at, published_at)"
                " SELECT gen_random_uuid(), 'test.topic', :label, '{}', now() - make_interval(secs => :created),"
                " now() - make_interval(secs => :published) FROM generate_series(1, :n)"
            ),
            {"label": label, "created": created_ago, "published": published_ago, "n": n},
        )


async def outbox_left(db: Database) -> list[tuple[str, int]]:
    return await counts_by(db.engine, "outbox", "key")


async def add_inbox(db: Database, label: str, n: int, processed_ago: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO inbox (consumer, event_id, topic, processed_at)"
                " SELECT :label, gen_random_uuid()::text, 'test.topic', now() - make_interval(secs => :ago)"
                " FROM generate_series(1, :n)"
            ),
            {"label": label, "ago": processed_ago, "n": n},
        )


async def inbox_left(db: Database) -> list[tuple[str, int]]:
    return await counts_by(db.engine, "inbox", "consumer")


async def test_only_old_published_outbox_rows_are_deleted(db: Database) -> None:
    await add_outbox(db, "a-old", 7, created_ago=9 * DAY, published_ago=8 * DAY)
    await add_outbox(db, "b-young", 3, created_ago=2 * DAY, published_ago=2 * DAY)
    await add_outbox(db, "c-unpublished", 2, created_ago=10 * DAY, published_ago=None)  # the relay is away
    assert await purge_published_outbox(db, WEEK, batch=3) == 7  # 3 + 3 + 1 per statement
    assert await outbox_left(db) == [("b-young", 3), ("c-unpublished", 2)]
    assert await purge_published_outbox(db, WEEK, batch=3) == 0
    assert await purge_published_outbox(db, DAY, batch=2) == 3  # a shorter window takes the young ones
    assert await outbox_left(db) == [("c-unpublished", 2)]  # never an unpublished row, however old


async def test_an_unpublished_row_holds_back_what_follows_it(db: Database) -> None:
    """The relay publishes in seq order, so rows after an unpublished one are kept until it goes out:
    the purge walks the table by primary key and stops at the first row it must keep (no scan)."""
    await add_outbox(db, "a-old", 2, created_ago=9 * DAY, published_ago=8 * DAY)
    await add_outbox(db, "b-stuck", 1, created_ago=9 * DAY, published_ago=None)
    await add_outbox(db, "c-old-after", 2, created_ago=9 * DAY, published_ago=8 * DAY)
    assert await purge_published_outbox(db, WEEK) == 2
    assert await outbox_left(db) == [("b-stuck", 1), ("c-old-after", 2)]
    async with db.engine.begin() as conn:  # the relay publishes it (eight days ago, for the test)
        await conn.execute(sa.text("UPDATE outbox SET published_at = now() - interval '8 days'"))
    assert await purge_published_outbox(db, WEEK) == 3
    assert await outbox_left(db) == []


async def test_only_inbox_rows_past_the_window_are_deleted(db: Database) -> None:
    await add_inbox(db, "a-old", 5, processed_ago=MONTH + DAY)
    await add_inbox(db, "b-young", 2, processed_ago=MONTH - DAY)
    await add_inbox(db, "c-now", 1, processed_ago=0)
    assert await purge_inbox(db, MONTH, batch=2) == 5  # 2 + 2 + 1
    assert await inbox_left(db) == [("b-young", 2), ("c-now", 1)]
    assert await purge_inbox(db, MONTH, batch=2) == 0


async def test_a_window_of_zero_keeps_everything(db: Database) -> None:
    await add_outbox(db, "a-old", 2, created_ago=900 * DAY, published_ago=900 * DAY)
    await add_inbox(db, "a-old", 2, processed_ago=900 * DAY)
    assert await purge_once(db, DAY, outbox_seconds=0, inbox_seconds=0) == {"idempotency_keys": 0}
    assert await outbox_left(db) == [("a-old", 2)] and await inbox_left(db) == [("a-old", 2)]


async def test_the_background_job_purges_both_on_its_period_and_counts_it(db: Database) -> None:
    def deleted(table: str) -> float:
        return REGISTRY.get_sample_value("retention_deleted_rows_total", {"table": table}) or 0.0

    before = {t: deleted(t) for t in ("outbox", "inbox")}
    await add_outbox(db, "a-old", 4, created_ago=8 * DAY, published_ago=8 * DAY)
    await add_outbox(db, "b-young", 1, created_ago=DAY, published_ago=DAY)
    await add_inbox(db, "a-old", 3, processed_ago=31 * DAY)
    await add_inbox(db, "b-young", 1, processed_ago=DAY)
    worker = asyncio.create_task(
        purge_forever(db, DAY, period=0.05, outbox_seconds=WEEK, inbox_seconds=MONTH)
    )
    try:

        async def only_young_left() -> bool:
            return await outbox_left(db) == [("b-young", 1)] and await inbox_left(db) == [("b-young", 1)]

        await eventually(only_young_left, "the first purge", 5, every=0.05)
        await add_inbox(db, "c-later", 2, processed_ago=40 * DAY)  # the next period takes these too
        await eventually(only_young_left, "the next period's purge", 5, every=0.05)
    finally:
        worker.cancel()
    assert await outbox_left(db) == [("b-young", 1)]
    assert await inbox_left(db) == [("b-young", 1)]
    assert deleted("outbox") == before["outbox"] + 4
    assert deleted("inbox") == before["inbox"] + 5
