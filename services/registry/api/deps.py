"""What every registry router needs: the database, the PII vault, the clock, a read session, paging, the
caller and what they may write (the rules are `access.py`), and writes in one unit of work that honour
Idempotency-Key. The same names (`clock`, `Clk`, `Session`, `Paging`, `write`) in every service's
`api/deps.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import authenticated
from shared.deps import Clk, Paging, ReadSession, Vault, clock, database, request_id, vault
from shared.principal import Principal
from shared.writes import idempotent_write

from ..access import check_people_writer, check_reference_data_writer
from ..models import idempotency_keys

__all__ = [
    "Clk",
    "Paging",
    "Session",
    "Vault",
    "clock",
    "database",
    "people_access",
    "reference_data_access",
    "request_id",
    "vault",
    "write",
]

READS = ("GET", "HEAD")


async def reference_data_access(request: Request) -> Principal:
    """Router dependency: reads for anyone signed in, writes for the commission."""
    principal = await authenticated(request)
    if request.method not in READS:
        check_reference_data_writer(principal)
    return principal


async def people_access(request: Request) -> Principal:
    """Router dependency for residents and contracts: reads for anyone signed in (each object is checked
    later), writes for the roles that keep residents' records."""
    principal = await authenticated(request)
    if request.method not in READS:
        check_people_writer(principal)
    return principal


Session = ReadSession


async def write(
    request: Request, body: Any, fn: Callable[[AsyncSession], Awaitable[Any]], status: int = 200
) -> JSONResponse:
    """Run a use case in one unit of work, honouring Idempotency-Key."""
    return await idempotent_write(request, idempotency_keys, body, fn, status)
