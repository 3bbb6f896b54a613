"""Retention: stored Idempotency-Key replies older than the TTL are deleted in the background.

They already count as absent (shared/idempotency.py); deleting them keeps the table to about a day of
writes. Deletes go in bounded batches, each its own short transaction, so a backlog never becomes one
huge transaction or long lock; rows a request is taking over right now are skipped, not waited for.
Every replica may run it: SKIP LOCKED keeps them out of each other's way.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
import structlog

from shared.db import Database
from shared.idempotency import expired
from shared.tables import add_platform_tables

log = structlog.get_logger()
BATCH = 1_000
PERIOD_SECONDS = 600.0
_, _, IDEMPOTENCY_KEYS = add_platform_tables(sa.MetaData())


async def purge_expired_keys(db: Database, ttl: int, batch: int = BATCH) -> int:
    """Delete expired rows, `batch` per statement until a statement deletes fewer; returns how many."""
    t = IDEMPOTENCY_KEYS
    pk = sa.tuple_(t.c.subject, t.c.route, t.c.key)
    victims = (
        sa.select(t.c.subject, t.c.route, t.c.key)
        .where(expired(t, ttl))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    total = 0
    while True:
        async with db.engine.begin() as conn:
            deleted = (await conn.execute(t.delete().where(pk.in_(victims)))).rowcount
        total += deleted
        if deleted < batch:
            return total


async def purge_forever(db: Database, ttl: int, period: float = PERIOD_SECONDS) -> None:
    """The background worker: purge, then sleep `period`; a failure is logged and retried next time."""
    while True:
        try:
            deleted = await purge_expired_keys(db, ttl)
            if deleted:
                log.info("idempotency_keys_purged", deleted=deleted)
        except Exception as exc:  # the database may be restarting; try again next period
            log.warning("idempotency_purge_error", error=repr(exc))
        await asyncio.sleep(period)
