"""Disputes over a charge to a community's budget (care outside the community): opened by the treating
institution or the community's lead institution, decided by the insurance agency after joint
verification. A decision posts an adjusting journal for the difference; nothing old is edited."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role, forbidden
from shared.crud import check_version
from shared.problems import Problem

from ..domain import ledger as acc
from ..domain.disputes import DisputeError, DisputeStatus, decided_amount
from ..domain.ledger import Journal
from ..events import publish
from ..models import Claim, Dispute, InsuranceYear, RmCommunity
from ..schemas import DecisionIn, DisputeIn, DisputeOut
from .common import conflict, not_found, require_officer
from .ledger import post_journal


async def _parties(s: AsyncSession, claim: Claim) -> set[uuid.UUID]:
    lead = await s.scalar(
        sa.select(RmCommunity.lead_institution_id).where(RmCommunity.id == claim.community_id)
    )
    return {claim.institution_id} | ({lead} if lead else set())


async def open_dispute(s: AsyncSession, who: Principal, body: DisputeIn, now: datetime) -> DisputeOut:
    claim = await s.get(Claim, body.claim_id)
    if claim is None:
        raise not_found("结算单", "claim")
    if who.role != Role.HIS_SYSTEM or who.institution_id not in await _parties(s, claim):
        raise forbidden(
            "only the treating institution or the charged community's lead institution may dispute",
            "仅就诊机构或被扣费医共体的牵头医院可提出争议",
        )
    if not claim.out_of_community:
        raise conflict(
            "not-a-charge",
            "医共体内就诊按人头/DIP 支付，不单独扣费",
            "care inside the community is paid by capitation or DIP; no charge to dispute",
        )
    year = await _year(s, claim)
    if year is None or year.status == "settled":
        raise conflict("year-settled", "该年度已清算", "the claim's year is settled")
    if claim.month > year.closed_months:
        raise conflict(
            "not-charged-yet",
            "该月尚未月结，费用尚未扣减",
            "the claim's month is not closed; nothing is charged yet",
        )
    if await s.scalar(sa.select(Dispute.id).where(Dispute.claim_id == claim.id, Dispute.status == "open")):
        raise conflict("dispute-open", "该结算单已有未决争议", "this claim already has an open dispute")
    d = Dispute(
        id=uuid.uuid4(),
        claim_id=claim.id,
        community_id=claim.community_id,
        institution_id=who.institution_id,
        status=DisputeStatus.OPEN,
        charged=await _current_charge(s, claim),
        claimed=body.claimed,
        reason=body.reason,
        opened_by=who.subject,
        opened_at=now,
    )
    s.add(d)
    await s.flush()
    out = DisputeOut.model_validate(d)
    await publish(s, "dispute.opened", str(d.community_id), f"dispute/{d.id}", out.model_dump(mode="json"))
    return out


async def _year(s: AsyncSession, claim: Claim) -> InsuranceYear | None:
    """Shared lock on the claim's year: the settlement (FOR UPDATE) cannot slip in between."""
    return await s.scalar(
        sa.select(InsuranceYear)
        .where(InsuranceYear.county_code == claim.county_code, InsuranceYear.year == claim.year)
        .with_for_update(read=True)
    )


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
    require_officer(who)
    d = await s.get(Dispute, ident, with_for_update=True)
    if d is None:
        raise not_found("争议", "dispute")
    check_version(d, body.version)
    if d.status != DisputeStatus.OPEN:
        raise conflict("dispute-decided", "争议已处理", "the dispute is already decided")
    try:
        amount = decided_amount(DisputeStatus(body.decision), d.charged, d.claimed, body.adjusted)
    except DisputeError as e:
        raise Problem(422, "bad-decision", "裁决须给出调整后金额", str(e)) from None
    claim = await s.get(Claim, d.claim_id)
    assert claim is not None
    year = await _year(s, claim)
    if year is None or year.status == "settled":
        raise conflict("year-settled", "该年度已清算", "the claim's year is settled")
    delta = amount - d.charged
    if delta:
        j = Journal("dispute", f"dispute:{d.id}", f"争议调整 / dispute adjustment {claim.claim_no}")
        j.add(acc.OUTSIDE_CARE, delta, str(d.community_id), str(claim.institution_id))
        j.add(acc.BUDGET, -delta, str(d.community_id))
        await post_journal(s, j, claim.county_code, claim.year, claim.month, now, str(d.community_id))
    d.status = body.decision
    d.decided = amount
    d.decision_note = body.note
    d.decided_by = who.subject
    d.decided_at = now
    await s.flush()
    out = DisputeOut.model_validate(d)
    await publish(
        s,
        "dispute.decided",
        str(d.community_id),
        f"dispute/{d.id}",
        out.model_dump(mode="json") | {"delta": delta},
    )
    return out
