"""Idempotency-Key for writes: a retried request gets the first response, and is applied once.

The key row is inserted in the same transaction as the write. A concurrent retry blocks on that
row until the first finishes; if the first committed, the retry replays its stored response; if it
rolled back (a 4xx), the retry runs afresh. The same key with a different body is a 422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, UnitOfWork
from shared.problems import Problem

Operation = Callable[[UnitOfWork], Awaitable[tuple[int, Any]]]
MAX_KEY_LENGTH = 200


def fingerprint(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, jsonable_encoder(body)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


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


async def run_write(
    db: Database, table: sa.Table, request: Request, body: Any, operation: Operation
) -> JSONResponse:
    """Run `operation` in a unit of work, honouring the request's Idempotency-Key if it has one."""
    key = idempotency_key(request)
    async with db.uow() as uow:
        if key is not None:
            fp = fingerprint(request.method, request.url.path, body)
            inserted = await uow.session.execute(
                insert(table).values(key=key, fingerprint=fp).on_conflict_do_nothing().returning(table.c.key)
            )
            if inserted.first() is None:
                row = (await uow.session.execute(sa.select(table).where(table.c.key == key))).one()
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
        status, result = await operation(uow)
        content = jsonable_encoder(result)
        if key is not None:
            await uow.session.execute(
                table.update().where(table.c.key == key).values(status_code=status, response=content)
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
