"""Posting journals (once per natural key) and reading balances — the one place billing writes money."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect

from .. import events
from ..domain.ledger import Journal
from ..models import Journal as JournalRow
from ..models import LedgerLine


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


async def post_journal(
    s: AsyncSession, j: Journal, county: str, year: int, month: int | None, now: Any, subject: str
) -> int | None:
    """Insert the journal and its lines and raise its event (keyed by `subject`, a community or the
    county); None when that key was already posted."""
    j.check()
    journal_id = await s.scalar(
        insert(JournalRow)
        .values(
            key=j.key, kind=j.kind, county_code=county, year=year, month=month, memo=j.memo, posted_at=now
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(JournalRow.id)
    )
    if journal_id is None:
        return None
    journal_id = int(journal_id)
    if j.lines:
        await s.execute(
            sa.insert(LedgerLine),
            [
                {
                    "journal_id": journal_id,
                    "account": x.account,
                    "community_id": _uuid(x.community_id),
                    "institution_id": _uuid(x.institution_id),
                    "amount": x.amount,
                }
                for x in j.lines
            ],
        )
    collect(s, events.journal_posted(j, journal_id, county, year, month, subject))
    return journal_id


async def balances(
    s: AsyncSession, county: str, year: int, community: uuid.UUID | None = None, by_institution: bool = False
) -> dict[tuple[str, str | None, str | None], int]:
    """Balance per (account, community, institution) over the year's journals."""
    cols = [
        LedgerLine.account,
        LedgerLine.community_id,
        LedgerLine.institution_id if by_institution else sa.null(),
    ]
    q = (
        sa.select(*cols, sa.func.sum(LedgerLine.amount))
        .join(JournalRow, JournalRow.id == LedgerLine.journal_id)
        .where(JournalRow.county_code == county, JournalRow.year == year)
        .group_by(*cols[: 3 if by_institution else 2])
    )
    if community is not None:
        q = q.where(LedgerLine.community_id == community)
    rows = (await s.execute(q)).all()
    out: dict[tuple[str, str | None, str | None], int] = {}
    for row in rows:
        account, community_id, institution_id, total = row[0], row[1], row[2], row[3]
        key = (
            str(account),
            str(community_id) if community_id else None,
            str(institution_id) if institution_id else None,
        )
        out[key] = int(total or 0)
    return out
