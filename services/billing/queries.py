"""Read side: a year's parameter versions and budgets, the trial balance, a community's statement, the
quarterly evaluation, claims and disputes — each checked against what the caller may see (the rules are
`access.py`)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.crud import paginate, where_equal
from shared.errors import Conflict, Invalid, not_found
from shared.money import fen_to_yuan
from shared.pagination import Page, PageParams
from shared.principal import Principal

from . import access
from .domain import ledger as acc
from .domain.evaluation import evaluate
from .models import (
    Budget,
    Claim,
    Dispute,
    InsuranceYear,
    Journal,
    LedgerLine,
    OutOfCountyCare,
    ParameterVersion,
    Settlement,
)
from .repository import budgets_of
from .schemas import (
    BudgetOut,
    CareFigures,
    ClaimOut,
    CommunityMonthCare,
    DestinationFigures,
    DiseaseFigures,
    DisputeOut,
    OutOfCountyReport,
    ParameterVersionOut,
)
from .usecases.ledger import balances

SPENDING = (acc.OUTSIDE_CARE, acc.OUT_OF_COUNTY, acc.DIP, acc.CAPITATION, acc.CONTRACT_FEE)


def version_out(row: ParameterVersion, in_use: int | None) -> ParameterVersionOut:
    return ParameterVersionOut(
        county_code=row.county_code,
        year=row.year,
        version=row.version,
        parameters=row.parameters,
        created_by=row.created_by,
        created_at=row.created_at,
        in_use=row.version == in_use,
    )


async def parameter_versions(
    s: AsyncSession, who: Principal, county: str, year: int
) -> list[ParameterVersionOut]:
    access.check_reader(who)
    year_row = await s.get(InsuranceYear, (county, year))
    rows = (
        await s.scalars(
            sa.select(ParameterVersion)
            .where(ParameterVersion.county_code == county, ParameterVersion.year == year)
            .order_by(ParameterVersion.version)
        )
    ).all()
    return [version_out(r, year_row.parameter_version if year_row else None) for r in rows]


async def list_budgets(s: AsyncSession, who: Principal, county: str, year: int) -> list[BudgetOut]:
    access.check_reader(who)
    return [BudgetOut.model_validate(r) for r in await budgets_of(s, county, year)]


async def trial_balance(s: AsyncSession, who: Principal, county: str, year: int) -> dict[str, Any]:
    """Per account: debits, credits, balance; the totals must be equal (and are, to the fen)."""
    access.check_reader(who)
    rows = (
        await s.execute(
            sa.select(
                LedgerLine.account,
                sa.func.sum(sa.case((LedgerLine.amount > 0, LedgerLine.amount), else_=0)),
                sa.func.sum(sa.case((LedgerLine.amount < 0, -LedgerLine.amount), else_=0)),
            )
            .join(Journal, Journal.id == LedgerLine.journal_id)
            .where(Journal.county_code == county, Journal.year == year)
            .group_by(LedgerLine.account)
            .order_by(LedgerLine.account)
        )
    ).all()
    accounts = [
        {
            "account": a,
            "debit": int(d),
            "credit": int(c),
            "balance": int(d) - int(c),
            "balance_yuan": fen_to_yuan(int(d) - int(c)),
        }
        for a, d, c in rows
    ]
    debit = sum(x["debit"] for x in accounts)
    credit = sum(x["credit"] for x in accounts)
    journals = await s.scalar(
        sa.select(sa.func.count()).where(Journal.county_code == county, Journal.year == year)
    )
    return {
        "county_code": county,
        "year": year,
        "journals": journals,
        "accounts": accounts,
        "total_debit": debit,
        "total_credit": credit,
        "balanced": debit == credit,
    }


async def statement(s: AsyncSession, who: Principal, community: uuid.UUID, year: int) -> dict[str, Any]:
    access.check_reader(who)
    budget = await s.scalar(sa.select(Budget).where(Budget.community_id == community, Budget.year == year))
    if budget is None:
        raise not_found("该医共体该年度预算", "budget of this community and year", f"{community}/{year}")
    bal = await balances(s, budget.county_code, year, community)
    per = await balances(s, budget.county_code, year, community, by_institution=True)
    settlement = await s.scalar(
        sa.select(Settlement.figures).where(Settlement.community_id == community, Settlement.year == year)
    )
    months = (
        await s.execute(
            sa.select(
                Journal.kind, Journal.month, sa.func.sum(LedgerLine.amount).filter(LedgerLine.amount > 0)
            )
            .join(LedgerLine, LedgerLine.journal_id == Journal.id)
            .where(LedgerLine.community_id == community, Journal.year == year)
            .group_by(Journal.kind, Journal.month)
            .order_by(Journal.month, Journal.kind)
        )
    ).all()
    c = str(community)
    members: dict[str, dict[str, int]] = {}
    for (account, _c, inst), v in per.items():
        if inst is not None:
            members.setdefault(inst, {})[account] = v
    return {
        "community_id": c,
        "year": year,
        "budget": BudgetOut.model_validate(budget).model_dump(mode="json"),
        "balances": {a: v for (a, cc, _i), v in bal.items() if cc == c},
        "spent": sum(v for (a, _c, _i), v in bal.items() if a in SPENDING),
        "journals": [{"kind": k, "month": m, "moved": int(v or 0)} for k, m, v in months],
        "members": members,
        "settlement": settlement,
    }


async def evaluation(
    s: AsyncSession, who: Principal, county: str, year: int, quarter: int
) -> list[dict[str, Any]]:
    """Spending of the closed months against the elapsed share of each budget, and the projection."""
    access.check_reader(who)
    if quarter not in (1, 2, 3, 4):
        raise Invalid("bad-quarter", "季度须为 1–4", "quarter must be 1–4")
    row = await s.get(InsuranceYear, (county, year))
    if row is None:
        raise Conflict("year-not-budgeted", "该年度尚未编制预算", "no budgets for this year")
    if row.closed_months < quarter * 3:
        raise Conflict(
            "quarter-open", f"第 {quarter} 季度尚未全部月结", f"quarter {quarter} is not fully closed"
        )
    spent = dict(
        (
            await s.execute(
                sa.select(LedgerLine.community_id, sa.func.sum(LedgerLine.amount))
                .join(Journal, Journal.id == LedgerLine.journal_id)
                .where(
                    Journal.county_code == county,
                    Journal.year == year,
                    Journal.month <= quarter * 3,
                    Journal.kind != "settlement",
                    LedgerLine.account.in_(SPENDING),
                )
                .group_by(LedgerLine.community_id)
            )
        ).all()
    )
    out = []
    for b in await budgets_of(s, county, year):
        e = evaluate(quarter, b.amount, int(spent.get(b.community_id, 0)))
        out.append(
            {
                "community_id": str(b.community_id),
                **{k: (str(v) if not isinstance(v, int) else v) for k, v in vars(e).items()},
            }
        )
    return out


async def claim(s: AsyncSession, who: Principal, ident: uuid.UUID) -> ClaimOut:
    row = await s.get(Claim, ident)
    if row is None:
        raise not_found("结算单", "claim", ident)
    access.ensure_claim_visible(who, ident, row.institution_id)
    return claim_out(row)


def claim_out(c: Claim) -> ClaimOut:
    return ClaimOut.model_validate(c)


class ClaimsPage(Page[ClaimOut]):
    insurance_share: int  # the sum over every matching claim, not just this page: what a HIS reconciles


async def list_claims(
    s: AsyncSession, who: Principal, params: PageParams, institution_id: uuid.UUID | None, **filters: Any
) -> ClaimsPage:
    """A month's (or any filter's) claims with their total, newest first; a HIS sees only its own
    institution's."""
    filters["institution_id"] = access.scope_claims(who, institution_id)
    stmt = where_equal(sa.select(Claim), **filters).order_by(Claim.received_at.desc(), Claim.claim_no)
    page = await paginate(s, stmt, params, claim_out)
    matching = stmt.order_by(None).subquery()
    total = await s.scalar(sa.select(sa.func.coalesce(sa.func.sum(matching.c.insurance_share), 0)))
    return ClaimsPage(**page.model_dump(), insurance_share=int(total or 0))


async def list_disputes(s: AsyncSession, who: Principal, status: str | None) -> list[DisputeOut]:
    """Every dispute for the agency and the commission, an institution's own for its HIS."""
    institution = access.scope_disputes(who)
    q = sa.select(Dispute).order_by(Dispute.opened_at.desc()).limit(200)
    if institution is not None:
        q = q.where(Dispute.institution_id == institution)
    if status:
        q = q.where(Dispute.status == status)
    return [DisputeOut.model_validate(d) for d in (await s.scalars(q)).all()]


async def out_of_county_report(
    s: AsyncSession,
    who: Principal,
    county: str,
    year: int,
    month: int | None = None,
    community_id: uuid.UUID | None = None,
) -> OutOfCountyReport:
    """Out-of-county care per community and settled month, by destination, by disease (ICD-10 category)
    and referred or not, from one grouping-sets aggregate: what the agency reports to each community."""
    access.check_reader(who)
    t = OutOfCountyCare
    category = sa.func.left(t.diagnosis_icd10, 3).label("category")
    keys = (t.community_id, t.month)
    destination = (t.destination_province, t.destination_city, t.destination_code, t.destination_name)
    stmt = (
        sa.select(
            *keys,
            *destination,
            category,
            t.referred,
            sa.func.grouping(*destination, category, t.referred).label("g"),
            sa.func.count(),
            sa.func.sum(t.total_cost),
            sa.func.sum(t.fund_share),
        )
        .where(t.county_code == county, t.year == year)
        .group_by(
            sa.func.grouping_sets(
                sa.tuple_(*keys),
                sa.tuple_(*keys, *destination),
                sa.tuple_(*keys, category),
                sa.tuple_(*keys, t.referred),
            )
        )
        .order_by(t.community_id, t.month, sa.func.sum(t.fund_share).desc())
    )
    if month is not None:
        stmt = stmt.where(t.month == month)
    if community_id is not None:
        stmt = stmt.where(t.community_id == community_id)
    # grouping() bits, most significant first: the 4 destination columns, the category, referred (1: not
    # in this row's grouping set)
    whole, by_destination, by_disease, by_referred = 0b111111, 0b000011, 0b111101, 0b111110
    rows = (await s.execute(stmt)).all()
    out: dict[tuple[uuid.UUID, int], CommunityMonthCare] = {}
    total = CareFigures()
    for c, m, *_, g, n, cost, share in rows:
        if g == whole:
            figures = CareFigures(records=n, total_cost=int(cost), fund_share=int(share))
            out[(c, m)] = CommunityMonthCare(
                community_id=c,
                month=m,
                referred=CareFigures(),
                unreferred=CareFigures(),
                by_destination=[],
                by_disease=[],
                **figures.model_dump(),
            )
            total = CareFigures(**{k: v + getattr(figures, k) for k, v in total.model_dump().items()})
    for c, m, province, city, code, name, cat, referred, g, n, cost, share in rows:
        figures = CareFigures(records=n, total_cost=int(cost), fund_share=int(share))
        cell = out[(c, m)]
        if g == by_destination:
            cell.by_destination.append(
                DestinationFigures(province=province, city=city, code=code, name=name, **figures.model_dump())
            )
        elif g == by_disease:
            cell.by_disease.append(DiseaseFigures(icd10_category=cat, **figures.model_dump()))
        elif g == by_referred:
            setattr(cell, "referred" if referred else "unreferred", figures)
    return OutOfCountyReport(county_code=county, year=year, total=total, communities=list(out.values()))
