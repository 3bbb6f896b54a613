"""Per-county rule settings the health commission changes, with their history.

The design brief makes every policy number configurable per county; the seeds give the defaults. Each
service keeps the settings it applies (the referral service its deadlines and slot windows, the registry
its coverage targets and posting rules) as a frozen dataclass: its field defaults are the seeds' numbers,
its fields are plain `int`, `bool`, `str` or `Decimal` (units in the name: `hold_minutes`), and an
optional `check()` raises `Invalid` when the numbers make no sense together.

A change is a new version row, never an update, so the history says who changed what, when and why, and
`policy_at` answers with the version in force at a given time (a sweep judging a deadline, an audit
asking what the rule was). A county with no row runs on the defaults (version 0).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import op
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import JSONB, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Invalid
from shared.text import RequestModel

TABLE = "county_policies"


S = TypeVar("S")  # a frozen dataclass of settings


def policy_table(metadata: sa.MetaData) -> sa.Table:
    """The service's versions table, on its own metadata (like `shared.tables.add_platform_tables`)."""
    return sa.Table(
        TABLE,
        metadata,
        sa.Column("county_code", sa.String(6), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("settings", JSONB, nullable=False),  # the whole set in force from this version on
        sa.Column("changed", JSONB, nullable=False),  # the fields this version changed
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def create_policy_table() -> None:
    """For a service's migration that adds the table. Frozen: a later change is a new step."""
    policy_table(sa.MetaData()).create(op.get_bind())


def drop_policy_table() -> None:
    op.drop_table(TABLE)


@dataclass(frozen=True)
class Versioned(typing.Generic[S]):
    county_code: str
    version: int  # 0: no change recorded, the seeds' defaults
    settings: S
    changed: dict[str, Any]
    reason: str | None
    changed_by: str | None
    changed_at: datetime | None


def encode(settings: object) -> dict[str, Any]:
    """JSON for storage and for answers: Decimals as strings (no float ever touches a rate)."""
    return {
        f.name: str(v) if isinstance(v, Decimal) else v
        for f in dataclasses.fields(settings)  # type: ignore[arg-type]
        for v in [getattr(settings, f.name)]
    }


def _coerce(cls: type[Any], name: str, kind: Any, value: Any) -> Any:
    bad = Invalid(
        "bad-setting",
        f"设置项 {name} 的取值无效",
        f"setting {name} must be {getattr(kind, '__name__', kind)}, not {value!r}",
        field=name,
    )
    if kind is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if kind is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad  # a float would carry binary noise into a rate: send "0.30"
        if isinstance(value, str) and len(value) > 30:
            raise bad
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise bad from None
        # "1e99999999999" would overflow the first arithmetic a check does (a 500, not a 422)
        if not number.is_finite() or not -20 <= number.adjusted() <= 20:
            raise bad
        return number
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"{cls.__name__}.{name}: unsupported setting type {kind}")


def decode(cls: type[S], data: Mapping[str, Any], stored: bool = False) -> S:
    """Requested JSON → the settings; unknown names and wrong types are the client's 422, and the
    settings' own `check()` runs last. A `stored` version was checked when it was written: a setting
    since retired is ignored and a bound tightened since does not make the county unreadable."""
    hints = typing.get_type_hints(cls)
    if stored:
        return cls(**{n: _coerce(cls, n, hints[n], v) for n, v in data.items() if n in hints})
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise Invalid(
            "unknown-setting", f"没有这些设置项：{unknown}", f"no such settings: {unknown}", fields=unknown
        )
    values = {name: _coerce(cls, name, hints[name], v) for name, v in data.items()}
    settings = cls(**values)
    check = getattr(settings, "check", None)
    if check is not None:
        check()
    return settings


def newest_versions(table: sa.Table) -> sa.Subquery:
    """Each county's newest settings (`county_code`, `settings` JSON), for set-based work that joins every
    row to its county's rules in one statement; a county that has recorded none has no row."""
    return (
        sa.select(table.c.county_code, table.c.settings)
        .ext(distinct_on(table.c.county_code))
        .order_by(table.c.county_code, table.c.version.desc())
        .subquery("in_force")
    )


async def policy_at(
    s: AsyncSession,
    table: sa.Table,
    cls: type[S],
    county: str,
    at: datetime | None = None,
    defaults: S | None = None,
) -> Versioned[S]:
    """The version in force at `at` (default: now, i.e. the newest). A county with no version runs on
    `defaults` (the deployment's configuration, itself defaulting to the seeds' numbers: `cls()`)."""
    q = sa.select(table).where(table.c.county_code == county)
    if at is not None:
        q = q.where(table.c.changed_at <= at)
    row = (await s.execute(q.order_by(table.c.version.desc()).limit(1))).mappings().first()
    if row is None:
        return Versioned(county, 0, defaults if defaults is not None else cls(), {}, None, None, None)
    return _versioned(cls, row)


def _versioned(cls: type[S], row: Any) -> Versioned[S]:
    return Versioned(
        row["county_code"],
        row["version"],
        decode(cls, row["settings"], stored=True),
        dict(row["changed"]),
        row["reason"],
        row["changed_by"],
        row["changed_at"],
    )


async def change_policy(
    s: AsyncSession,
    table: sa.Table,
    cls: type[S],
    county: str,
    changes: Mapping[str, Any],
    who: str,
    reason: str,
    now: datetime,
    defaults: S | None = None,
) -> Versioned[S]:
    """Store the next version: the newest settings (or `defaults`, for the first) with `changes`
    applied, checked as a whole. Concurrent changes to one county are serialised, so neither is lost."""
    if not changes:
        raise Invalid("no-change", "没有要修改的设置项", "name at least one setting to change")
    await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{TABLE}:{county}"))))
    current = await policy_at(s, table, cls, county, defaults=defaults)
    settings = decode(cls, {**encode(current.settings), **changes})
    if current.changed_at is not None and current.changed_at > now:
        now = current.changed_at  # `now` was read before the lock: keep versions in time order
    changed = {k: v for k, v in encode(settings).items() if k in changes}
    row = {
        "county_code": county,
        "version": current.version + 1,
        "settings": encode(settings),
        "changed": changed,
        "reason": reason,
        "changed_by": who,
        "changed_at": now,
    }
    await s.execute(sa.insert(table).values(**row))
    return Versioned(county, current.version + 1, settings, changed, reason, who, now)


async def policy_history(
    s: AsyncSession, table: sa.Table, cls: type[S], county: str, limit: int = 100
) -> list[Versioned[S]]:
    """Newest first; the defaults (version 0) are not a row and are not listed."""
    rows = (
        (
            await s.execute(
                sa.select(table)
                .where(table.c.county_code == county)
                .order_by(table.c.version.desc())
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return [_versioned(cls, r) for r in rows]


class PolicyChangeIn(RequestModel):
    """A commission's change: only the settings named change; the reason goes into the history."""

    changes: dict[str, Any] = Field(min_length=1, max_length=50)
    reason: str = Field(min_length=1, max_length=500)


class PolicyOut(BaseModel):
    county_code: str
    version: int = Field(description="0: nothing recorded for the county, it runs on the defaults")
    settings: dict[str, Any]
    changed: dict[str, Any]
    reason: str | None
    changed_by: str | None
    changed_at: datetime | None


def policy_out(v: Versioned[Any]) -> PolicyOut:
    return PolicyOut(
        county_code=v.county_code,
        version=v.version,
        settings=encode(v.settings),
        changed=v.changed,
        reason=v.reason,
        changed_by=v.changed_by,
        changed_at=v.changed_at,
    )
