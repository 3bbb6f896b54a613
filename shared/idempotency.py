"""Idempotency-Key storage: a retried write gets the first reply, and is applied once.

A key belongs to the caller (the token's subject, "anonymous" without a token) and the route (method
and path): the same key from another caller, or on another route, is another request. Stored replies
expire after `idempotency_ttl_seconds` (24 h): an older row counts as absent, and a background job
(shared/retention.py) deletes them.

The key row is inserted in the same transaction as the write. A concurrent retry blocks on that
row until the first finishes; if the first committed, the retry replays its stored reply; if it
rolled back (a 4xx), the retry runs afresh. The same key with a different body is refused.

This module is the storage only (no web code: the retention job uses it); reading the key off a request
and answering with the stored reply is `shared.writes`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict, Invalid

MAX_KEY_LENGTH = 200
DEFAULT_TTL_SECONDS = 24 * 3600
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Scope:
    """Whose key it is: the primary key of the stored reply."""

    subject: str
    route: str
    key: str

    def where(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.subject == self.subject, table.c.route == self.route, table.c.key == self.key)


@dataclass(frozen=True)
class StoredReply:
    """What the first request with the key answered: replayed as is to its retries."""

    status_code: int
    response: Any


def bounded(text: str, max_bytes: int) -> str:
    """`text`, or its hash when longer than `max_bytes` of UTF-8: it must fit its column and the
    primary-key index (PostgreSQL refuses index rows over ~2.7 kB), and still tell values apart."""
    raw = text.encode()
    return text if len(raw) <= max_bytes else "sha256:" + hashlib.sha256(raw).hexdigest()


def ttl_seconds(settings: object) -> int:
    """How long a stored reply answers retries (the service setting, 24 h if it has none)."""
    return int(getattr(settings, "idempotency_ttl_seconds", DEFAULT_TTL_SECONDS))


def expired(table: sa.Table, ttl: int) -> sa.ColumnElement[bool]:
    """Rows older than the TTL, by the database's clock (the one that stamped `created_at`)."""
    return table.c.created_at < sa.func.now() - sa.literal(timedelta(seconds=ttl), sa.Interval)


async def claim_key(
    session: AsyncSession, table: sa.Table, scope: Scope, fp: str, ttl: int
) -> StoredReply | None:
    """Take the key for this request (None: run it), or return the stored reply to replay.

    An expired row is taken over in the same statement, so two retries racing on it still run once."""
    for _ in range(2):
        stmt = insert(table).values(subject=scope.subject, route=scope.route, key=scope.key, fingerprint=fp)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.subject, table.c.route, table.c.key],
            set_={"fingerprint": fp, "status_code": None, "response": None, "created_at": sa.func.now()},
            where=expired(table, ttl),
        )
        if (await session.execute(stmt.returning(table.c.key))).first() is not None:
            return None
        columns = (table.c.fingerprint, table.c.status_code, table.c.response)
        row = (await session.execute(sa.select(*columns).where(scope.where(table)))).first()
        if row is None:
            continue  # purged between the two statements: claim it again
        if row.fingerprint != fp:
            raise Invalid(
                "idempotency-key-reused",
                "Idempotency-Key 已用于另一个请求",
                "Idempotency-Key was already used for a different request",
            )
        return StoredReply(row.status_code, row.response)
    raise Conflict("idempotency-key-busy", "请稍后重试", "The Idempotency-Key is busy; retry shortly")


async def record_reply(session: AsyncSession, table: sa.Table, scope: Scope, reply: StoredReply) -> None:
    """Store the reply with the key, in the write's transaction: it commits with the write or not at all."""
    await session.execute(
        table.update()
        .where(scope.where(table))
        .values(status_code=reply.status_code, response=reply.response)
    )
