"""Read models built from another service's events: each event carries the aggregate's full snapshot
with its version, and an upsert keeps the newest version, so redelivered, replayed or out-of-order
events converge on the same rows."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession


def coerce_row(table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """JSON strings to the column's Python type (asyncpg wants real dates, datetimes and UUIDs)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = table.c[key].type
        if value is None:
            out[key] = None
        elif isinstance(kind, sa.DateTime):
            out[key] = datetime.fromisoformat(value)
        elif isinstance(kind, sa.Date):
            out[key] = date.fromisoformat(value)
        elif isinstance(kind, sa.Uuid):
            out[key] = uuid.UUID(str(value))
        elif isinstance(kind, ARRAY) and isinstance(kind.item_type, sa.Uuid):
            out[key] = [uuid.UUID(str(v)) for v in value]
        else:
            out[key] = value
    return out


async def upsert_snapshot(
    session: AsyncSession, table: sa.Table, snapshot: dict[str, Any], fields: dict[str, Any]
) -> None:
    """Insert the row an event's snapshot gives (`fields`: the columns this read model keeps, plus id,
    version and, if the table has it, active), or replace the stored row if this one is not older."""
    values = {"id": snapshot["id"], "version": snapshot["version"], **fields}
    if "active" in table.c:
        values["active"] = snapshot.get("active", True)
    values = coerce_row(table, values)
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={k: stmt.excluded[k] for k in values if k != "id"},
        where=table.c.version <= stmt.excluded.version,
    )
    await session.execute(stmt)
