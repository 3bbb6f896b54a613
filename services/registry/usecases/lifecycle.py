"""Deactivation is the same for every registry aggregate: keep the row (history and references stay
valid), mark it inactive, and tell the other services."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from .. import repository as repo

OutT = TypeVar("OutT", bound=BaseModel)


async def deactivate(
    s: AsyncSession,
    model: type[Any],
    ident: uuid.UUID,
    changed: Callable[[AsyncSession, Any, str], Awaitable[OutT]],
    check: Callable[[Any], None] | None = None,
) -> OutT:
    """`changed(s, row, "deactivated")` raises the aggregate's event and returns its view."""
    obj = await repo.get(s, model, ident, for_update=True)
    if check is not None:
        check(obj)
    if obj.active:
        obj.active = False
        await s.flush()
    return await changed(s, obj, "deactivated")
