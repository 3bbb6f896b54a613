"""Recording out-of-county care (转外就医): an insurance officer records, one at a time or as a batch (the
provincial settlement system's monthly file), the care the agency settled outside the county for the
county's insured. Each record is charged to the resident's community budget when recorded
(domain/out_of_county.py says why), the batch whole or not at all. A record number is unique per county:
the same record again is a duplicate (not charged twice), with other content it is refused. Refused
too: a year not budgeted (or no budget for the resident's community), a settled year."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.principal import Principal

from ..access import check_officer
from ..domain.claims import dated_in_future
from ..domain.out_of_county import care_journal
from ..lookups import Years
from ..models import Budget, OutOfCountyCare, RmCommunity, RmReferral, RmResident
from ..schemas import OutOfCountyBatchOut, OutOfCountyCareIn, OutOfCountyCareOut
from .batch import Refusals
from .ledger import post_journal

Fresh = list[tuple[int, OutOfCountyCareIn, str, uuid.UUID]]  # index, record, county, community


def fingerprint(r: OutOfCountyCareIn) -> str:
    raw = json.dumps(r.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def check_shapes(records: list[OutOfCountyCareIn], errors: Refusals, now: datetime) -> dict[str, str]:
    """What needs no database; returns each record number's fingerprint."""
    seen: dict[str, str] = {}
    for i, r in enumerate(records):
        if dated_in_future(r.settled_on, now):
            errors.refuse(
                i,
                r.record_no,
                "settled-date-in-future",
                "结算日期晚于今天（北京时间）",
                "the settlement date is after today (China time)",
            )
        if r.fund_share > r.total_cost:
            errors.refuse(
                i,
                r.record_no,
                "fund-share-over-total",
                "基金支付不能超过总费用",
                "fund share exceeds the total cost",
            )
        if seen.setdefault(r.record_no, fingerprint(r)) != fingerprint(r):
            errors.refuse(
                i,
                r.record_no,
                "record-number-reused",
                "同一记录号内容不同",
                "the same record number with different content",
            )
    return seen


Residents = dict[uuid.UUID, tuple[uuid.UUID, str, bool]]  # resident → community, county, active


async def _residents(s: AsyncSession, records: list[OutOfCountyCareIn]) -> Residents:
    rows = await s.execute(
        sa.select(RmResident.id, RmResident.community_id, RmCommunity.county_code, RmResident.active)
        .join(RmCommunity, RmCommunity.id == RmResident.community_id)
        .where(RmResident.id.in_({r.resident_id for r in records}))
    )
    return {i: (c, county, active) for i, c, county, active in rows.all()}


async def _lock_counties(s: AsyncSession, counties: set[str]) -> None:
    """One recording at a time per county (sorted, so no deadlock): the record numbers read next are then
    all there are, and a record racing in another batch is seen as a duplicate, not charged twice."""
    for county in sorted(counties):
        await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("out-of-county:" + county))))


async def record_care(
    s: AsyncSession, who: Principal, records: list[OutOfCountyCareIn], now: datetime, detail: bool
) -> OutOfCountyBatchOut:
    check_officer(who)
    errors = Refusals(
        "record_no", "records-rejected", ("条转外就医记录", "record(s)"), conflicts=("year-settled",)
    )
    seen = check_shapes(records, errors, now)
    errors.raise_if_any()
    residents = await _residents(s, records)
    await _lock_counties(s, {county for _, county, _ in residents.values()})
    existing = {
        (x.county_code, x.record_no): x
        for x in (
            await s.scalars(sa.select(OutOfCountyCare).where(OutOfCountyCare.record_no.in_(set(seen))))
        ).all()
    }
    fresh, duplicates = await _triage(s, records, seen, residents, existing, errors)
    errors.raise_if_any()
    rows = await _charge(s, who, fresh, seen, now)
    if rows:
        await s.execute(sa.insert(OutOfCountyCare), rows)
    out = OutOfCountyBatchOut(
        created=len(rows), duplicates=len(duplicates), fund_share=sum(r["fund_share"] for r in rows)
    )
    if detail:
        out.records = [OutOfCountyCareOut.model_validate(r) for r in rows] + [
            OutOfCountyCareOut.model_validate(d).model_copy(update={"duplicate": True}) for d in duplicates
        ]
    return out


async def _triage(
    s: AsyncSession,
    records: list[OutOfCountyCareIn],
    seen: dict[str, str],
    residents: Residents,
    existing: dict[tuple[str, str], OutOfCountyCare],
    errors: Refusals,
) -> tuple[Fresh, list[OutOfCountyCare]]:
    """Split the batch into new records, duplicates of stored ones, and refusals (into `errors`)."""
    years = Years(s)  # FOR SHARE: a settlement (FOR UPDATE) waits for this recording, or refuses it after
    budgeted = await _budgeted(s, records, residents)
    referrals = await _referral_owners(s, records)
    fresh: Fresh = []
    taken: set[str] = set()
    duplicates: list[OutOfCountyCare] = []
    for i, r in enumerate(records):
        community, county, active = residents.get(r.resident_id) or (None, None, False)
        old = existing.get((county, r.record_no)) if county else None
        if old is not None:
            if old.fingerprint != seen[r.record_no]:
                errors.refuse(
                    i,
                    r.record_no,
                    "record-number-reused",
                    "该记录号已用于不同内容",
                    "record number already stored with different content",
                )
            else:
                duplicates.append(old)
            continue
        if r.record_no in taken:
            continue  # the same record twice in one batch: charged once
        if community is None or county is None or not active:
            errors.refuse(i, r.record_no, "unknown-resident", "参保人不存在", "unknown resident")
            continue
        year = r.settled_on.year
        y = await years.get(county, year)
        if y is None or (community, year) not in budgeted:
            errors.refuse(
                i,
                r.record_no,
                "year-not-budgeted",
                "该参保人所属医共体该年度尚无预算",
                "no budget for the resident's community in the year settled",
            )
            continue
        if y[0].status == "settled":
            errors.refuse(i, r.record_no, "year-settled", "该年度已清算", f"{county} {year} is settled")
            continue
        if r.referral_id is not None and referrals.get(r.referral_id, r.resident_id) != r.resident_id:
            errors.refuse(
                i,
                r.record_no,
                "unknown-referral",
                "转诊单不属于该参保人",
                "the referral is another resident's",
            )
            continue
        fresh.append((i, r, county, community))
        taken.add(r.record_no)
    return fresh, duplicates


async def _budgeted(
    s: AsyncSession, records: list[OutOfCountyCareIn], residents: Residents
) -> set[tuple[uuid.UUID, int]]:
    """(community, year) pairs with a budget, among those of the records."""
    communities = {c for c, _, _ in residents.values()}
    rows = await s.execute(
        sa.select(Budget.community_id, Budget.year).where(
            Budget.community_id.in_(communities), Budget.year.in_({r.settled_on.year for r in records})
        )
    )
    return {(c, y) for c, y in rows.all()}


async def _referral_owners(s: AsyncSession, records: list[OutOfCountyCareIn]) -> dict[uuid.UUID, uuid.UUID]:
    """Referral → its resident, for the referrals billing knows of (an unknown one is taken as recorded:
    the agency's record stands)."""
    wanted = {r.referral_id for r in records if r.referral_id}
    if not wanted:
        return {}
    rows = await s.execute(sa.select(RmReferral.id, RmReferral.resident_id).where(RmReferral.id.in_(wanted)))
    return {i: resident for i, resident in rows.all()}


async def _charge(
    s: AsyncSession, who: Principal, fresh: Fresh, seen: dict[str, str], now: datetime
) -> list[dict[str, Any]]:
    """Post one journal per county and settled month for the new records; returns their rows."""
    by_month: dict[tuple[str, int, int], Fresh] = {}
    for item in fresh:
        by_month.setdefault((item[2], item[1].settled_on.year, item[1].settled_on.month), []).append(item)
    batch = uuid.uuid4().hex
    rows: list[dict[str, Any]] = []
    for (county, year, month), items in sorted(by_month.items()):
        charges: dict[str, int] = {}
        for _, r, _, community in items:
            charges[str(community)] = charges.get(str(community), 0) + r.fund_share
        j = care_journal(f"out_of_county:{county}:{year}:{month:02d}:{batch}", year, month, charges)
        journal_id = await post_journal(s, j, county, year, month, now, county)
        assert journal_id is not None  # the key is new
        rows += [
            _row(r, county, community, seen[r.record_no], journal_id, who, now)
            for _, r, _, community in items
        ]
    return rows


def _row(
    r: OutOfCountyCareIn,
    county: str,
    community: uuid.UUID,
    fp: str,
    journal_id: int,
    who: Principal,
    now: datetime,
) -> dict[str, Any]:
    return {
        **r.model_dump(),
        "id": uuid.uuid4(),
        "fingerprint": fp,
        "county_code": county,
        "community_id": community,
        "year": r.settled_on.year,
        "month": r.settled_on.month,
        "journal_id": journal_id,
        "recorded_by": who.subject[:200],
        "recorded_at": now,
    }
