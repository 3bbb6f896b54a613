"""Generic persistence helpers every service's repository uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import stale_version
from shared.pagination import Page, PageParams

OutT = TypeVar("OutT")


def check_version(obj: Any, version: int) -> None:
    """Optimistic concurrency: the caller must have read the current version."""
    if obj.version != version:
        raise stale_version(obj.version)


async def paginate(
    session: AsyncSession, stmt: sa.Select[Any], params: PageParams, to_out: Callable[[Any], OutT]
) -> Page[OutT]:
    total = await session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.execute(stmt.limit(params.limit).offset(params.offset))).scalars().all()
    # `Page`, not `Page[OutT]`: parametrised by a type variable, pydantic builds (and, once the class is
    # collected, builds again) a model and its schema per call; the route's response model checks the items
    return Page(items=[to_out(r) for r in rows], total=total or 0, limit=params.limit, offset=params.offset)


def where_equal(stmt: sa.Select[Any], **conditions: Any) -> sa.Select[Any]:
    """Apply `column == value` for every filter given (None means not filtered)."""
    entity = stmt.column_descriptions[0]["entity"]
    for name, value in conditions.items():
        if value is not None:
            stmt = stmt.where(getattr(entity, name) == value)
    return stmt
