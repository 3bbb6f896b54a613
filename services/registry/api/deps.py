"""What every registry router needs: database, PII vault, clock, paging, the caller and what they may
write (the rules are `access.py`), writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from asgi_correlation_id import correlation_id
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import current_principal
from shared.clock import Clock
from shared.db import Database
from shared.deps import Paging, ReadSession
from shared.pii import PiiVault
from shared.principal import Principal
from shared.writes import idempotent_write

from ..access import check_people_writer, check_reference_data_writer
from ..models import idempotency_keys

READS = ("GET", "HEAD")


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


def reference_data_access(request: Request) -> Principal:
    """Router dependency: reads for anyone signed in, writes for the commission."""
    principal = current_principal(request)
    if request.method not in READS:
        check_reference_data_writer(principal)
    return principal


def people_access(request: Request) -> Principal:
    """Router dependency for residents and contracts: reads for anyone signed in (each object is checked
    later), writes for the roles that keep residents' records."""
    principal = current_principal(request)
    if request.method not in READS:
        check_people_writer(principal)
    return principal


Session = ReadSession
Page = Paging
Vault = Annotated[PiiVault, Depends(get_vault)]
Clk = Annotated[Clock, Depends(get_clock)]


async def write(
    request: Request, body: Any, fn: Callable[[AsyncSession], Awaitable[Any]], status: int = 200
) -> JSONResponse:
    """Run a use case in one unit of work, honouring Idempotency-Key."""
    return await idempotent_write(request, idempotency_keys, body, fn, status)
