"""Offset pagination with a hard page-size cap (an oversized page is a 422, not a slow query).

The page request and the page are plain models, used by queries and repositories; reading them off the
query string is the web's job (`shared.deps.page_params`)."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
MAX_PAGE_SIZE = 200
MAX_OFFSET = 10_000_000


class PageParams(BaseModel):
    limit: int = 50
    offset: int = 0


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
