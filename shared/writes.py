"""A write request run once: its use case in one unit of work, honouring the request's Idempotency-Key
(the storage and its rules are `shared.idempotency`). Web code: it reads the request and answers with
the JSON response."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import current_principal
from shared.db import Database, UnitOfWork
from shared.idempotency import (
    ANONYMOUS,
    MAX_KEY_LENGTH,
    Scope,
    StoredReply,
    bounded,
    claim_key,
    record_reply,
    ttl_seconds,
)
from shared.problems import Problem

Operation = Callable[[UnitOfWork], Awaitable[tuple[int, Any]]]


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


def request_scope(request: Request, key: str) -> Scope:
    subject = current_principal(request).subject if "authorization" in request.headers else ANONYMOUS
    route = f"{request.method} {request.url.path}"
    return Scope(bounded(subject, 200), bounded(route, 400), key)


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
                return JSONResponse(
                    replay.response, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"}
                )
        status, result = await operation(uow)
        content = jsonable_encoder(result)
        if scope is not None:
            await record_reply(uow.session, table, scope, StoredReply(status, content))
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
