"""The periodic runs an insurance officer starts: monthly prepayment, month close (claims charged,
provisional DIP, capitation) and the year-end settlement. Aggregates come from set-based SQL; each run
posts once per natural key, so running it again changes nothing."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import SHANGHAI
from shared.db import collect
from shared.errors import Conflict, Invalid
from shared.principal import Principal

from .. import events
from ..access import check_officer
from ..domain import ledger as acc
from ..domain.budget import CommunityBudget, prepayment
from ..domain.parameters import YearParameters
from ..domain.postings import (
    MonthCharges,
    YearEndInput,
    capitation_for_month,
    month_close_journal,
    prepayment_journal,
    prepayment_key,
    settlement_journal,
)
from ..domain.settlement import contract_fee, month_starts
from ..models import (
    Budget,
    Claim,
    Dispute,
    InsuranceYear,
    Journal,
    LedgerLine,
    RmContract,
    RmInstitution,
    RmResident,
    RmTeam,
    Settlement,
)
from ..repository import budgets_of, load_year
from ..schemas import RunOut
from .ledger import balances, post_journal


def _month(month: int) -> None:
    if not 1 <= month <= 12:
        raise Invalid("bad-month", "月份须为 1–12", "month must be 1–12")


def _domain_budget(b: Budget) -> CommunityBudget:
    return CommunityBudget(
        str(b.community_id), b.covered_residents, b.amount, b.capitation_pool, b.dip_budget, []
    )


async def run_prepayment(
    s: AsyncSession, who: Principal, county: str, year: int, month: int, now: datetime
) -> RunOut:
    """1/12 of each community's budget, and the part of the year's quality deposit the months still to come
    owe (domain/budget.prepayment: the figures of the derivation, made up to the fen in a year whose earlier
    months were withheld by an older rule); once per community and month. The year is locked: the split
    reads the deposits already posted."""
    check_officer(who)
    _month(month)
    row, params = await load_year(s, county, year, lock=True)
    if row.status == "settled":
        raise Conflict("year-settled", "该年度已清算", f"{county} {year} is settled")
    budgets = await budgets_of(s, county, year)
    withheld = await _deposits_withheld(s, [str(b.community_id) for b in budgets], year)
    out = []
    for b in budgets:
        c = str(b.community_id)
        p = prepayment(b.amount, params.quality_deposit_rate, month, withheld.get(c, {}))
        j = prepayment_journal(c, year, p)
        if await post_journal(s, j, county, year, month, now, c) is not None:
            out.append(
                {"key": j.key, "community_id": c, "gross": p.gross, "deposit": p.deposit, "paid": p.paid}
            )
    return RunOut(
        kind="prepayment", county_code=county, year=year, month=month, posted=bool(out), journals=out
    )


async def _deposits_withheld(s: AsyncSession, communities: list[str], year: int) -> dict[str, dict[int, int]]:
    """The deposit each posted prepayment withheld, per community and month (0 for a month posted without
    one), found by the journals' natural keys."""
    keys = {prepayment_key(c, year, m): (c, m) for c in communities for m in range(1, 13)}
    deposit = sa.func.coalesce(sa.func.sum(LedgerLine.amount).filter(LedgerLine.account == acc.DEPOSIT), 0)
    rows = (
        await s.execute(
            sa.select(Journal.key, deposit)
            .outerjoin(LedgerLine, LedgerLine.journal_id == Journal.id)
            .where(Journal.key.in_(list(keys)))
            .group_by(Journal.key)
        )
    ).all()
    out: dict[str, dict[int, int]] = {}
    for key, fen in rows:
        c, m = keys[key]
        out.setdefault(c, {})[m] = int(fen)
    return out


async def _month_charges(
    s: AsyncSession, county: str, year: int, month: int, params: YearParameters
) -> dict[str, MonthCharges]:
    """One pass over the month's claims: outside-community charges and provisional DIP by institution."""
    est = params.dip_estimated_point_value
    dip_amount = sa.func.sum(sa.func.round(Claim.weighted_points * est))
    rows = (
        await s.execute(
            sa.select(
                Claim.community_id,
                Claim.institution_id,
                Claim.out_of_community,
                sa.func.sum(Claim.insurance_share),
                dip_amount.filter(Claim.kind != "outpatient"),
            )
            .where(Claim.county_code == county, Claim.year == year, Claim.month == month)
            .group_by(Claim.community_id, Claim.institution_id, Claim.out_of_community)
        )
    ).all()
    charges: dict[str, MonthCharges] = {}
    for community, inst, outside, share, dip in rows:
        c = charges.setdefault(str(community), MonthCharges())
        if outside:
            c.outside_care[str(inst)] = int(share)
        elif dip:
            c.dip_provisional[str(inst)] = int(dip)
    return charges


async def _home_counts(s: AsyncSession, communities: list[uuid.UUID]) -> dict[str, dict[str, int]]:
    """Covered residents per community and home institution (a member of that community), one query."""
    rows = (
        await s.execute(
            sa.select(RmResident.community_id, RmResident.home_institution_id, sa.func.count())
            .join(RmInstitution, RmInstitution.id == RmResident.home_institution_id)
            .where(
                RmResident.community_id.in_(communities),
                RmResident.active,
                RmInstitution.community_id == RmResident.community_id,
            )
            .group_by(RmResident.community_id, RmResident.home_institution_id)
        )
    ).all()
    out: dict[str, dict[str, int]] = {}
    for c, i, n in rows:
        out.setdefault(str(c), {})[str(i)] = int(n)
    return out


async def _close_month(
    s: AsyncSession, row: InsuranceYear, params: YearParameters, month: int, now: datetime
) -> list[dict[str, object]]:
    county, year = row.county_code, row.year
    charges = await _month_charges(s, county, year, month, params)
    out: list[dict[str, object]] = []
    budgets = await budgets_of(s, county, year)
    communities = [b.community_id for b in budgets]
    if params.capitation_basis == "contracted":
        heads = await _contracts_in_force(s, communities, month_starts(year)[month - 1 : month])
    else:
        heads = await _home_counts(s, communities)
    for b in budgets:
        c = charges.get(str(b.community_id), MonthCharges())
        c.capitation = capitation_for_month(b.capitation_pool, month, heads.get(str(b.community_id), {}))
        j = month_close_journal(str(b.community_id), year, month, c)
        if await post_journal(s, j, county, year, month, now, str(b.community_id)) is not None:
            out.append(
                {
                    "key": j.key,
                    "community_id": str(b.community_id),
                    "outside_care": sum(c.outside_care.values()),
                    "dip_provisional": sum(c.dip_provisional.values()),
                    "capitation": sum(c.capitation.values()),
                }
            )
    row.closed_months = month
    return out


async def close_month(
    s: AsyncSession, who: Principal, county: str, year: int, month: int, now: datetime
) -> RunOut:
    """Months close in order; a closed month takes no more claims. Closing a closed month changes nothing."""
    check_officer(who)
    _month(month)
    row, params = await load_year(s, county, year, lock=True)
    if month <= row.closed_months:
        return RunOut(
            kind="month_close", county_code=county, year=year, month=month, posted=False, journals=[]
        )
    if month != row.closed_months + 1:
        raise Conflict(
            "month-out-of-order",
            f"须先关闭第 {row.closed_months + 1} 月",
            f"close month {row.closed_months + 1} first",
        )
    out = await _close_month(s, row, params, month, now)
    return RunOut(kind="month_close", county_code=county, year=year, month=month, posted=True, journals=out)


async def settle_year(
    s: AsyncSession,
    who: Principal,
    county: str,
    year: int,
    scores: dict[uuid.UUID, Decimal],
    now: datetime,
    finalize_provisional: bool = False,
) -> RunOut:
    """Close the months still open, then settle every community: final DIP, contract fees (by the months
    each contract was in force), spending against the budget (surplus or overspend), then the deposit by
    score (domain/postings.settlement_journal); the figures also report the care charged to the budget
    outside the community and outside the county. Once per year."""
    check_officer(who)
    row, params = await load_year(s, county, year, lock=True)
    if row.status == "settled":
        return RunOut(kind="settlement", county_code=county, year=year, posted=False, journals=[])
    waiting = (
        await s.execute(
            sa.select(Claim.claim_no, Claim.awaiting_referral_id)
            .where(Claim.county_code == county, Claim.year == year, Claim.pricing == "provisional")
            .order_by(Claim.claim_no)
        )
    ).all()
    if waiting and finalize_provisional:  # the officer's decision: their referral will not come
        await s.execute(
            sa.update(Claim)
            .where(Claim.county_code == county, Claim.year == year, Claim.pricing == "provisional")
            .values(pricing="final", awaiting_referral_id=None)
        )
        waiting = []
    if waiting:  # their price is not known yet: settling now would fix a provisional price for good
        raise Conflict(
            "claims-provisional",
            "尚有结算单在等待转诊信息，暂按未转诊计价",
            f"{len(waiting)} claim(s) are priced provisionally, waiting for their referral to reach billing",
            claims=[{"claim_no": n, "awaiting_referral_id": str(r)} for n, r in waiting[:100]],
        )
    budgets = await budgets_of(s, county, year)
    missing = [str(b.community_id) for b in budgets if b.community_id not in scores]
    if missing or any(not Decimal(0) <= v <= 100 for v in scores.values()):
        raise Invalid(
            "scores-needed",
            "每个医共体须有 0–100 的考核得分",
            f"every community needs an assessment score 0–100 (missing: {missing})",
        )
    prepaid = await s.scalar(
        sa.select(sa.func.count()).where(
            Journal.county_code == county, Journal.year == year, Journal.kind == "prepayment"
        )
    )
    if prepaid != 12 * len(budgets):
        raise Conflict(
            "prepayments-missing",
            "12 个月的预付尚未全部完成",
            f"{prepaid} of {12 * len(budgets)} monthly prepayments are posted",
        )
    if await s.scalar(
        sa.select(sa.func.count())
        .select_from(Dispute)
        .where(Dispute.status == "open", Dispute.community_id.in_([b.community_id for b in budgets]))
    ):
        raise Conflict("disputes-open", "尚有未处理的争议", "disputes are still open; decide them first")
    for month in range(row.closed_months + 1, 13):
        await _close_month(s, row, params, month, now)
    points = await _points(s, county, year)
    contracts = await _contracts_in_force(s, [b.community_id for b in budgets], month_starts(year))
    tiers = dict(
        (str(i), t)
        for i, t in (
            await s.execute(sa.select(RmInstitution.id, RmInstitution.tier).where(RmInstitution.active))
        ).all()
    )
    members = await _members(s, [b.community_id for b in budgets])
    fee = contract_fee(params.individual_contribution, params.contract_fee_rate)
    out = []
    ledger = await balances(s, county, year, by_institution=True)  # one read for every community
    for b in budgets:
        c = str(b.community_id)
        total = {k: v for k, v in ledger.items() if k[1] == c}
        inst = {(a, i): v for (a, cc, i), v in total.items() if i is not None}
        paid: dict[str, int] = {}
        for (account, i), v in inst.items():
            if account in (acc.DIP, acc.CAPITATION):
                paid[i] = paid.get(i, 0) + v
        x = YearEndInput(
            community=c,
            budget=_domain_budget(b),
            dip_points=points.get(c, {}),
            dip_paid={i: v for (a, i), v in inst.items() if a == acc.DIP},
            contract_months=contracts.get(c, {}),
            contract_fee=fee,
            budget_left=total.get((acc.BUDGET, c, None), 0),
            cash=total.get((acc.CASH, c, None), 0),
            deposit=total.get((acc.DEPOSIT, c, None), 0),
            score=scores[b.community_id],
            paid_to_members=paid,
            member_tiers={i: tiers[i] for i in members.get(c, [])},
            surplus_weights=params.surplus_weights,
            overspend_community_share=params.overspend_community_share,
        )
        j, figures = settlement_journal(county, year, x)
        figures["outside_care"] = sum(v for (a, _i), v in inst.items() if a == acc.OUTSIDE_CARE)
        # what the agency paid for the community's residents treated outside the county (转外就医)
        figures["out_of_county"] = sum(v for (a, _c, _i), v in total.items() if a == acc.OUT_OF_COUNTY)
        await post_journal(s, j, county, year, 12, now, c)
        s.add(
            Settlement(
                county_code=county, year=year, community_id=b.community_id, figures=figures, created_at=now
            )
        )
        collect(s, events.settlement_completed(county, year, c, figures))
        out.append({"key": j.key, "community_id": c, **figures})
    row.status = "settled"
    return RunOut(kind="settlement", county_code=county, year=year, posted=True, journals=out)


async def _points(s: AsyncSession, county: str, year: int) -> dict[str, dict[str, Decimal]]:
    """The year's weighted DIP points per community and member institution (one aggregate)."""
    rows = (
        await s.execute(
            sa.select(Claim.community_id, Claim.institution_id, sa.func.sum(Claim.weighted_points))
            .where(
                Claim.county_code == county,
                Claim.year == year,
                Claim.kind != "outpatient",
                ~Claim.out_of_community,
            )
            .group_by(Claim.community_id, Claim.institution_id)
        )
    ).all()
    out: dict[str, dict[str, Decimal]] = {}
    for c, i, p in rows:
        out.setdefault(str(c), {})[str(i)] = Decimal(p or 0)
    # decided point disputes: each decision replaces the points before it, so the deltas add up
    adjustments = (
        await s.execute(
            sa.select(
                Claim.community_id,
                Claim.institution_id,
                sa.func.sum(Dispute.decided_points - Dispute.charged_points),
            )
            .join(Claim, Claim.id == Dispute.claim_id)
            .where(
                Claim.county_code == county,
                Claim.year == year,
                Dispute.kind == "points",
                Dispute.decided_points.is_not(None),
            )
            .group_by(Claim.community_id, Claim.institution_id)
        )
    ).all()
    for c, i, delta in adjustments:
        parts = out.setdefault(str(c), {})
        parts[str(i)] = parts.get(str(i), Decimal(0)) + Decimal(delta or 0)
    return out


async def _contracts_in_force(
    s: AsyncSession, communities: list[uuid.UUID], days: list[date]
) -> dict[str, dict[str, int]]:
    """Contracts in force on each of `days` (a month's first day; `settlement.month_starts`), counted once
    per day, per community and team institution: over the year's twelve first days these are contract-months
    (the contract fee), over one month's first day the contracted residents (capitation by contract).
    Every contract counts whatever its status now, by `settlement.in_force_on`: a renewed one keeps the
    months of its term, a terminated one the months before its termination day (China time), so a resident
    who terminates and signs with another team is counted once a month."""
    day = sa.values(sa.column("day", sa.Date), name="days").data([(d,) for d in days])
    terminated_on = sa.cast(sa.func.timezone(SHANGHAI.key, RmContract.terminated_at), sa.Date)
    in_force = sa.and_(
        RmContract.start_date <= day.c.day,
        RmContract.end_date >= day.c.day,
        sa.or_(RmContract.terminated_at.is_(None), day.c.day < terminated_on),
    )
    rows = (
        await s.execute(
            sa.select(RmTeam.community_id, RmTeam.institution_id, sa.func.count())
            .select_from(RmContract)
            .join(RmTeam, RmTeam.id == RmContract.team_id)
            .join(day, in_force)
            .where(RmTeam.community_id.in_(communities))
            .group_by(RmTeam.community_id, RmTeam.institution_id)
        )
    ).all()
    out: dict[str, dict[str, int]] = {}
    for c, i, n in rows:
        out.setdefault(str(c), {})[str(i)] = int(n)
    return out


async def _members(s: AsyncSession, communities: list[uuid.UUID]) -> dict[str, list[str]]:
    rows = (
        await s.execute(
            sa.select(RmInstitution.community_id, RmInstitution.id).where(
                RmInstitution.community_id.in_(communities), RmInstitution.active
            )
        )
    ).all()
    out: dict[str, list[str]] = {}
    for c, i in rows:
        out.setdefault(str(c), []).append(str(i))
    return out
