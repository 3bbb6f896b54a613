"""What every billing router needs: the clock, the caller, a read session, paging, the path parameters
of an insurance year, and writes in one unit of work that honour Idempotency-Key. The same names in every
service's `api/deps.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Caller
from shared.deps import Clk, Paging, ReadSession, clock
from shared.writes import idempotent_write

from ..models import idempotency_keys

__all__ = ["Caller", "Clk", "County", "Month", "Paging", "Session", "Year", "clock", "write"]


Session = ReadSession
County = Annotated[str, Path(pattern=r"^\d{6}$", description="county division code (行政区划代码)")]
Year = Annotated[int, Path(ge=2000, le=2100)]
Month = Annotated[int, Path(ge=1, le=12)]


async def write(
    request: Request, body: Any, fn: Callable[[AsyncSession], Awaitable[Any]], status: int = 200
) -> JSONResponse:
    """Run a use case in one unit of work, honouring Idempotency-Key."""
    return await idempotent_write(request, idempotency_keys, body, fn, status)
