"""What every registry router needs: database, PII vault, clock, paging, the caller, writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from asgi_correlation_id import correlation_id
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.db import Database, ReadSession
from shared.idempotency import idempotent_write
from shared.pagination import PageParams, page_params
from shared.pii import PiiVault

from ..models import idempotency_keys


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_vault(request: Request) -> PiiVault:
    vault: PiiVault = request.app.state.vault
    return vault


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def request_id() -> str | None:
    return correlation_id.get()


Session = ReadSession
Page = Annotated[PageParams, Depends(page_params)]
Vault = Annotated[PiiVault, Depends(get_vault)]
Clk = Annotated[Clock, Depends(get_clock)]


async def write(
    request: Request, body: Any, fn: Callable[[AsyncSession], Awaitable[Any]], status: int = 200
) -> JSONResponse:
    """Run a use case in one unit of work, honouring Idempotency-Key."""
    return await idempotent_write(request, idempotency_keys, body, fn, status)
