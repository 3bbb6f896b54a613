"""Request dependencies every service's routers share: what the app factory put on `app.state` (the
database, the clock, the PII vault), the request id, a read session on the app's database and the page
asked for in the query string. Each service's `api/deps.py` re-exports them beside its own. Web code, kept out of `shared.db` and `shared.pagination` so that workers,
use cases and queries do not depend on FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from asgi_correlation_id import correlation_id
from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.db import Database
from shared.pagination import MAX_OFFSET, MAX_PAGE_SIZE, PageParams
from shared.pii import PiiVault


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def clock(request: Request) -> Clock:
    c: Clock = request.app.state.clock
    return c


def vault(request: Request) -> PiiVault:
    v: PiiVault = request.app.state.vault
    return v


def request_id() -> str | None:
    return correlation_id.get()


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session on the app's database (rolled back at the end)."""
    async with database(request).read() as session:
        yield session


async def page_params(  # async: a plain def dependency costs a thread-pool hop per request
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size, at most 200")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


async def _clock(request: Request) -> Clock:
    return clock(request)


async def _vault(request: Request) -> PiiVault:
    return vault(request)


# The dependencies are async (the plain functions above stay for direct callers): FastAPI runs a plain
# `def` dependency in its thread pool, a queue and a thread hop per request for a dictionary look-up.
ReadSession = Annotated[AsyncSession, Depends(read_session)]
Paging = Annotated[PageParams, Depends(page_params)]
Clk = Annotated[Clock, Depends(_clock)]
Vault = Annotated[PiiVault, Depends(_vault)]
