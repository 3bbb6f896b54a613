"""Pricing again the claims that waited for a referral, when the referral's event arrives (called by the
consumer of referral events, in the transaction that applies the event). Each claim is priced by the same
rules as on arrival; the difference changes the claim's figures while its month is open (the month
close charges them) and is posted as an adjusting journal once the month is closed. Only provisional
claims are priced again and each becomes final once, so a redelivered event changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain import ledger as acc
from ..domain.claims import leg_of
from ..domain.claims_batch import ClaimFacts, price_claims
from ..domain.disputes import DisputeKind, DisputeStatus
from ..domain.ledger import Journal
from ..domain.repricing import Standing, ledger_adjustment, referral_standing
from ..lookups import REFERRALS_LOCK, Chains, Years, chain_roots, deductible_met
from ..models import Claim, Dispute, RmReferral
from .ledger import post_journal

log = structlog.get_logger()


async def lock_referral_events(s: AsyncSession) -> None:
    """Held by the consumer while it applies a referral event and prices its claims again (see
    lookups.REFERRALS_LOCK: claims naming referrals wait meanwhile, and are waited for)."""
    await s.execute(sa.select(sa.func.pg_advisory_xact_lock(REFERRALS_LOCK)))


async def reprice_waiting(s: AsyncSession, referral_id: uuid.UUID, now: datetime) -> list[Claim]:
    """Price again every provisional claim waiting for `referral_id`; returns those now final."""
    waiting = list(
        (
            await s.scalars(
                sa.select(Claim)
                .where(Claim.pricing == "provisional", Claim.awaiting_referral_id == referral_id)
                .order_by(Claim.service_date, Claim.received_at, Claim.claim_no)  # earliest care first
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    if not waiting:
        return []
    named = {c.referral_id for c in waiting if c.referral_id}
    referrals = {
        r.id: r for r in (await s.scalars(sa.select(RmReferral).where(RmReferral.id.in_(named)))).all()
    }
    chains = await chain_roots(s, named)
    ready: list[tuple[Claim, Standing]] = []
    for c in waiting:
        assert c.referral_id is not None
        ref = referrals.get(c.referral_id)
        standing = referral_standing(
            ref.status if ref else None,
            ref is not None and ref.resident_id == c.resident_id,
            ref is not None and ref.to_institution_id == c.institution_id,
            c.referral_id in chains.roots,
        )
        if standing is Standing.WAITING:  # still undecided, or now waiting for a referral of its chain
            c.awaiting_referral_id = chains.missing.get(c.referral_id, c.referral_id)
        else:
            ready.append((c, standing))
    years = Years(s)
    # the deductible met along each chain before these claims join it (they are in no chain yet)
    chain_of = {c.id: _chain(c, referrals, chains) for c, _ in ready}
    met = await deductible_met(s, sorted({x for x in chain_of.values() if x}))
    done = []
    for c, standing in ready:
        assert c.referral_id is not None
        y = await years.get(c.county_code, c.year)
        if y is None or y[0].status == "settled":  # settlement refuses while claims wait; never here
            log.warning("reprice_year_closed", claim=str(c.id), year=c.year)
            continue
        chain = chain_of[c.id]
        referred = standing is Standing.REFERRED
        ref = referrals.get(c.referral_id)
        facts = ClaimFacts(
            tier=c.tier,
            kind=c.kind,
            eligible_cost=c.eligible_cost,
            grassroots_disease=c.grassroots_disease,
            referred=referred,
            chain_id=chain,
            dip_points=c.dip_points,
            leg=leg_of(ref.direction if ref else None, referred, c.referral_id in chains.continued),
        )
        [p] = price_claims([facts], y[1], met.total, met.in_leg)
        old = c.insurance_share
        c.referred, c.chain_id, c.leg = facts.referred, uuid.UUID(chain) if chain else None, str(facts.leg)
        c.deductible_used, c.ratio, c.insurance_share = p.deductible_used, p.ratio, p.insurance_share
        c.weighted_points = p.weighted_points
        c.pricing, c.awaiting_referral_id, c.repriced_at = "final", None, now
        closed = c.month <= y[0].closed_months
        delta = ledger_adjustment(old, p.insurance_share, closed, c.out_of_community)
        if delta and await _dispute_takes(s, c, delta):
            j = Journal("reprice", f"reprice:{c.id}", f"转诊补到重算 / claim priced again {c.claim_no}")
            j.add(acc.OUTSIDE_CARE, delta, str(c.community_id), str(c.institution_id))
            j.add(acc.BUDGET, -delta, str(c.community_id))
            await post_journal(s, j, c.county_code, c.year, c.month, now, str(c.community_id))
        done.append(c)
    await s.flush()
    return done


def _chain(c: Claim, referrals: dict[uuid.UUID, RmReferral], chains: Chains) -> str | None:
    """The chain whose deductible the claim shares: its referral's, if the referral is its resident's."""
    assert c.referral_id is not None
    root = chains.roots.get(c.referral_id)
    ref = referrals.get(c.referral_id)
    return str(root) if root and ref is not None and ref.resident_id == c.resident_id else None


async def _dispute_takes(s: AsyncSession, c: Claim, delta: int) -> bool:
    """Whether the difference is posted: a decided dispute over the charge fixed it (the agency's
    decision stands, nothing is posted); an open one is re-based on the charge as it now is."""
    disputes = (
        await s.scalars(
            sa.select(Dispute)
            .where(Dispute.claim_id == c.id, Dispute.kind == DisputeKind.CHARGE)
            .with_for_update()
        )
    ).all()
    if any(d.status != DisputeStatus.OPEN for d in disputes):
        return False
    for d in disputes:
        d.charged += delta
    return True
