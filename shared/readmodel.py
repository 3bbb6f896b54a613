"""Read models built from another service's events: each event carries the aggregate's snapshot with its
version (decoded through its contract, `shared.contracts.decode`), and an upsert keeps the newest
version, so redelivered, replayed or out-of-order events converge on the same rows."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession


class Snapshot(Protocol):
    """What every snapshot contract has: the aggregate's id and version."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def version(self) -> int: ...


def coerce_row(table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """JSON strings to the column's Python type (asyncpg wants real dates, datetimes and UUIDs); values
    that already have their type (from a decoded contract) pass as they are."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = table.c[key].type
        if not isinstance(value, str | list):
            out[key] = value
        elif isinstance(kind, sa.DateTime) and isinstance(value, str):
            out[key] = datetime.fromisoformat(value)
        elif isinstance(kind, sa.Date) and isinstance(value, str):
            out[key] = date.fromisoformat(value)
        elif isinstance(kind, sa.Uuid) and isinstance(value, str):
            out[key] = uuid.UUID(value)
        elif isinstance(kind, ARRAY) and isinstance(kind.item_type, sa.Uuid) and isinstance(value, list):
            out[key] = [uuid.UUID(str(v)) for v in value]
        else:
            out[key] = value
    return out


async def upsert_snapshot(
    session: AsyncSession, table: sa.Table, snapshot: Snapshot, fields: dict[str, Any]
) -> None:
    """Insert the row an event's snapshot gives (`fields`: the columns this read model keeps; id, version
    and, if the table has it, active come from the snapshot), or replace the stored row if this one is
    not older."""
    values = {"id": snapshot.id, "version": snapshot.version, **fields}
    if "active" in table.c:
        values["active"] = getattr(snapshot, "active", True)
    values = coerce_row(table, values)
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={k: stmt.excluded[k] for k in values if k != "id"},
        where=table.c.version <= stmt.excluded.version,
    )
    await session.execute(stmt)
