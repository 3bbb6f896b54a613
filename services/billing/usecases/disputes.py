"""Disputes over a charge to a community's budget (care outside the community): opened by the treating
institution or the community's lead institution, decided by the insurance agency after joint
verification. A decision posts an adjusting journal for the difference; nothing old is edited."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.crud import check_version
from shared.db import collect
from shared.errors import Conflict, Invalid, not_found
from shared.principal import Principal

from .. import events
from ..access import check_dispute_opener, check_officer
from ..domain import ledger as acc
from ..domain.disputes import DisputeError, DisputeKind, DisputeStatus, decided_amount, dispute_kind
from ..domain.ledger import Journal
from ..models import Claim, Dispute, InsuranceYear, RmCommunity
from ..repository import load_year
from ..schemas import DecisionIn, DisputeIn, DisputeOut
from .ledger import post_journal


async def _parties(s: AsyncSession, claim: Claim) -> set[uuid.UUID]:
    lead = await s.scalar(
        sa.select(RmCommunity.lead_institution_id).where(RmCommunity.id == claim.community_id)
    )
    return {claim.institution_id} | ({lead} if lead else set())


async def open_dispute(s: AsyncSession, who: Principal, body: DisputeIn, now: datetime) -> DisputeOut:
    claim = await s.get(Claim, body.claim_id)
    if claim is None:
        raise not_found("结算单", "claim", body.claim_id)
    check_dispute_opener(who, await _parties(s, claim))
    kind = dispute_kind(claim.out_of_community, claim.kind)
    if kind is None:
        raise Conflict(
            "not-a-charge",
            "医共体内门诊按人头支付，不单独扣费",
            "outpatient care inside the community is covered by capitation; nothing is charged per visit",
        )
    if (kind is DisputeKind.CHARGE) != (body.claimed is not None) or (kind is DisputeKind.POINTS) != (
        body.claimed_points is not None
    ):
        raise Invalid(
            "dispute-figure",
            "医共体外就诊请给出金额 claimed，医共体内住院请给出 DIP 分值 claimed_points",
            "give `claimed` (fen) for care outside the community, `claimed_points` for inpatient care inside it",
        )
    year = await _year(s, claim)
    if year is None or year.status == "settled":
        raise Conflict("year-settled", "该年度已清算", "the claim's year is settled")
    if claim.month > year.closed_months:
        raise Conflict(
            "not-charged-yet",
            "该月尚未月结，费用尚未扣减",
            "the claim's month is not closed; nothing is charged yet",
        )
    if await s.scalar(sa.select(Dispute.id).where(Dispute.claim_id == claim.id, Dispute.status == "open")):
        raise Conflict("dispute-open", "该结算单已有未决争议", "this claim already has an open dispute")
    d = Dispute(
        id=uuid.uuid4(),
        claim_id=claim.id,
        community_id=claim.community_id,
        institution_id=who.institution_id,
        status=DisputeStatus.OPEN,
        kind=kind,
        reason=body.reason,
        opened_by=who.subject,
        opened_at=now,
    )
    if kind is DisputeKind.CHARGE:
        assert body.claimed is not None
        d.charged, d.claimed = await _current_charge(s, claim), body.claimed
    else:
        assert body.claimed_points is not None
        value = (await load_year(s, claim.county_code, claim.year))[1].dip_estimated_point_value
        d.charged_points, d.claimed_points = await _current_points(s, claim), body.claimed_points
        d.charged, d.claimed = _fen(d.charged_points, value), _fen(d.claimed_points, value)
    s.add(d)
    await s.flush()
    collect(s, events.dispute_opened(d))
    return DisputeOut.model_validate(d)


async def _year(s: AsyncSession, claim: Claim) -> InsuranceYear | None:
    """Shared lock on the claim's year: the settlement (FOR UPDATE) cannot slip in between."""
    return await s.scalar(
        sa.select(InsuranceYear)
        .where(InsuranceYear.county_code == claim.county_code, InsuranceYear.year == claim.year)
        .with_for_update(read=True)
    )


def _fen(points: Decimal, value: Decimal) -> int:
    return int((points * value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def _current_points(s: AsyncSession, claim: Claim) -> Decimal:
    """The claim's weighted points, or what the last decided dispute made them."""
    decided = await s.scalar(
        sa.select(Dispute.decided_points)
        .where(Dispute.claim_id == claim.id, Dispute.decided_points.is_not(None))
        .order_by(Dispute.decided_at.desc())
        .limit(1)
    )
    return decided if decided is not None else (claim.weighted_points or Decimal(0))


async def _current_charge(s: AsyncSession, claim: Claim) -> int:
    """The claim's share plus every adjustment decided on it so far."""
    decided = await s.scalar(
        sa.select(Dispute.decided)
        .where(Dispute.claim_id == claim.id, Dispute.decided.is_not(None))
        .order_by(Dispute.decided_at.desc())
        .limit(1)
    )
    return int(decided) if decided is not None else claim.insurance_share


async def decide_dispute(
    s: AsyncSession, who: Principal, ident: uuid.UUID, body: DecisionIn, now: datetime
) -> DisputeOut:
    check_officer(who)
    d = await s.get(Dispute, ident, with_for_update=True)
    if d is None:
        raise not_found("争议", "dispute", ident)
    check_version(d, body.version)
    if d.status != DisputeStatus.OPEN:
        raise Conflict("dispute-decided", "争议已处理", "the dispute is already decided")
    claim = await s.get(Claim, d.claim_id)
    assert claim is not None
    year = await _year(s, claim)
    if year is None or year.status == "settled":
        raise Conflict("year-settled", "该年度已清算", "the claim's year is settled")
    status = DisputeStatus(body.decision)
    try:
        if d.kind == DisputeKind.POINTS:
            assert d.charged_points is not None and d.claimed_points is not None
            value = (await load_year(s, claim.county_code, claim.year))[1].dip_estimated_point_value
            decided = decided_amount(status, d.charged_points, d.claimed_points, body.adjusted_points)
            d.decided_points = decided.quantize(Decimal("0.0001"))
            amount = _fen(d.decided_points, value)
        else:
            amount = decided_amount(status, d.charged, d.claimed, body.adjusted)
    except DisputeError as e:
        raise Invalid("bad-decision", "裁决须给出调整后金额或分值", str(e)) from None
    delta = amount - d.charged
    if delta:
        # care outside: the budget pays the difference; DIP points: the community pays the provisional
        # difference now, and the year-end DIP counts the decided points
        j = Journal("dispute", f"dispute:{d.id}", f"争议调整 / dispute adjustment {claim.claim_no}")
        account, source = (
            (acc.DIP, acc.CASH) if d.kind == DisputeKind.POINTS else (acc.OUTSIDE_CARE, acc.BUDGET)
        )
        j.add(account, delta, str(d.community_id), str(claim.institution_id))
        j.add(source, -delta, str(d.community_id))
        await post_journal(s, j, claim.county_code, claim.year, claim.month, now, str(d.community_id))
    d.status = body.decision
    d.decided = amount
    d.decision_note = body.note
    d.decided_by = who.subject
    d.decided_at = now
    await s.flush()
    collect(s, events.dispute_decided(d, delta))
    return DisputeOut.model_validate(d)
