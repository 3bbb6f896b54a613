"""Idempotency-Key for writes: a retried request gets the first response, and is applied once.

A key belongs to the caller (the token's subject, "anonymous" without a token) and the route (method
and path): the same key from another caller, or on another route, is another request. Stored replies
expire after `idempotency_ttl_seconds` (24 h): an older row counts as absent, and a background job
(shared/retention.py) deletes them.

The key row is inserted in the same transaction as the write. A concurrent retry blocks on that
row until the first finishes; if the first committed, the retry replays its stored response; if it
rolled back (a 4xx), the retry runs afresh. The same key with a different body is a 422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import current_principal
from shared.db import Database, UnitOfWork
from shared.problems import Problem

Operation = Callable[[UnitOfWork], Awaitable[tuple[int, Any]]]
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


def fingerprint(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, jsonable_encoder(body)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


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


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise Problem(
            400,
            "bad-idempotency-key",
            "Idempotency-Key 长度须为 1–200",
            "Idempotency-Key must be 1–200 characters",
        )
    return key


def request_scope(request: Request, key: str) -> Scope:
    subject = current_principal(request).subject if "authorization" in request.headers else ANONYMOUS
    route = f"{request.method} {request.url.path}"
    return Scope(bounded(subject, 200), bounded(route, 400), key)


async def claim_key(
    session: AsyncSession, table: sa.Table, scope: Scope, fp: str, ttl: int
) -> JSONResponse | None:
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
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key 已用于另一个请求",
                "Idempotency-Key was already used for a different request",
            )
        return JSONResponse(
            row.response, status_code=row.status_code, headers={"Idempotent-Replayed": "true"}
        )
    raise Problem(409, "idempotency-key-busy", "请稍后重试", "The Idempotency-Key is busy; retry shortly")


async def run_write(
    db: Database, table: sa.Table, request: Request, body: Any, operation: Operation
) -> JSONResponse:
    """Run `operation` in a unit of work, honouring the request's Idempotency-Key if it has one."""
    key = idempotency_key(request)
    scope = request_scope(request, key) if key is not None else None
    async with db.uow() as uow:
        if scope is not None:
            fp = fingerprint(request.method, request.url.path, body)
            ttl = ttl_seconds(getattr(request.app.state, "settings", None))
            replay = await claim_key(uow.session, table, scope, fp, ttl)
            if replay is not None:
                return replay
        status, result = await operation(uow)
        content = jsonable_encoder(result)
        if scope is not None:
            await uow.session.execute(
                table.update().where(scope.where(table)).values(status_code=status, response=content)
            )
        await uow.commit()
    return JSONResponse(content, status_code=status)


async def idempotent_write(
    request: Request,
    table: sa.Table,
    body: Any,
    fn: Callable[[AsyncSession], Awaitable[Any]],
    status: int = 200,
) -> JSONResponse:
    """Run a use case in one unit of work on the app's database, honouring Idempotency-Key."""

    async def op(uow: UnitOfWork) -> tuple[int, Any]:
        return status, await fn(uow.session)

    db: Database = request.app.state.db
    return await run_write(db, table, request, body, op)
