"""Request dependencies every service's routers share: a read session on the app's database and the page
asked for in the query string. Web code, kept out of `shared.db` and `shared.pagination` so that workers,
use cases and queries do not depend on FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.pagination import MAX_OFFSET, MAX_PAGE_SIZE, PageParams


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session on the app's database (rolled back at the end)."""
    db: Database = request.app.state.db
    async with db.read() as session:
        yield session


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size, at most 200")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


ReadSession = Annotated[AsyncSession, Depends(read_session)]
Paging = Annotated[PageParams, Depends(page_params)]
