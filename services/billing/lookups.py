"""Lookups for the use cases: what pricing a batch of claims needs from the database, each fetched once
per batch (set-based) — the institution, residents and their counties, referrals and their chains (read
models of registry and referral events), claim numbers already stored, the insurance years (locked FOR
SHARE), the grassroots catalogue, the deductible met per chain (and per leg of its episode)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Invalid

from .domain.claims_batch import Met
from .domain.parameters import YearParameters
from .models import (
    Claim,
    InsuranceYear,
    ParameterVersion,
    RmCatalogueEntry,
    RmCommunity,
    RmInstitution,
    RmReferral,
    RmResident,
)
from .repository import to_domain
from .schemas import ClaimIn

# A chain is followed back to its first referral: a downward referral to the upward one it continues (the
# way home of one episode), a re-request to the referral it replaces. `continued`: the walk went through
# a downward referral's continuation, so the claim is on the way home of an episode. A referral can only
# name one made before it, so the walk ends; the depth bound only keeps a corrupt read model from looping.
CHAIN_SQL = sa.text(
    """
    WITH RECURSIVE up(start, id, parent, via_continues, continued, depth) AS (
        SELECT id, id, coalesce(continues_referral_id, replaces_referral_id),
               continues_referral_id IS NOT NULL, false, 0
        FROM rm_referrals WHERE id = ANY(:ids)
        UNION ALL
        SELECT up.start, r.id, coalesce(r.continues_referral_id, r.replaces_referral_id),
               r.continues_referral_id IS NOT NULL, up.continued OR up.via_continues, up.depth + 1
        FROM up JOIN rm_referrals r ON r.id = up.parent
        WHERE up.depth < 64
    )
    SELECT start, id, parent, continued FROM up
    WHERE parent IS NULL OR NOT EXISTS (SELECT 1 FROM rm_referrals r WHERE r.id = up.parent)
    """
)
# Claims naming referrals take this lock shared, the consumer of referral events exclusively: a claim is
# stored as waiting for a referral either before the referral's event is applied (and is then priced
# again by it) or after (and then sees it), never in between.
REFERRALS_LOCK = sa.func.hashtext("billing:referral-events")


@dataclass
class Chains:
    """What billing knows of the chains of some referrals (only the known referrals are keys)."""

    # referral → the chain's first referral
    roots: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    # referral → a referral its chain continues or replaces that billing has not heard of yet
    missing: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    # referrals on the way home of an episode (their walk went through a continuation)
    continued: set[uuid.UUID] = field(default_factory=set)


async def chain_roots(s: AsyncSession, referral_ids: set[uuid.UUID]) -> Chains:
    """The chains of the known referrals among `referral_ids`: complete ones to their first referral, and
    for an incomplete one (a referral it continues or replaces has not reached billing) the referral
    billing waits for."""
    chains = Chains()
    rows = await s.execute(CHAIN_SQL, {"ids": list(referral_ids)})
    for start, root, parent, continued in rows.all():
        if parent is None:
            chains.roots[start] = root
            if continued:
                chains.continued.add(start)
        else:
            chains.missing[start] = parent
    return chains


@dataclass
class Lookups:
    institution: RmInstitution
    residents: dict[uuid.UUID, RmResident]
    counties: dict[uuid.UUID, str]  # community → county
    referrals: dict[uuid.UUID, RmReferral]
    chains: Chains
    existing: dict[str, Claim]  # claim number → the claim already stored


async def load_lookups(
    s: AsyncSession, institution_id: uuid.UUID, claims: list[ClaimIn], claim_nos: set[str]
) -> Lookups:
    inst = await s.scalar(sa.select(RmInstitution).where(RmInstitution.id == institution_id))
    if inst is None or not inst.active:
        raise Invalid("unknown-institution", "机构不存在或已停用", "unknown or inactive institution")
    wanted = {c.resident_id for c in claims}
    residents = {
        r.id: r for r in (await s.scalars(sa.select(RmResident).where(RmResident.id.in_(wanted)))).all()
    }
    communities = {r.community_id for r in residents.values()}
    counties = dict(
        (
            await s.execute(
                sa.select(RmCommunity.id, RmCommunity.county_code).where(RmCommunity.id.in_(communities))
            )
        ).all()
    )
    referral_ids = {c.referral_id for c in claims if c.referral_id}
    referrals: dict[uuid.UUID, RmReferral] = {}
    chains = Chains()
    if referral_ids:
        await s.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(REFERRALS_LOCK)))
        found = await s.scalars(sa.select(RmReferral).where(RmReferral.id.in_(referral_ids)))
        referrals = {r.id: r for r in found.all()}
        chains = await chain_roots(s, referral_ids)
    return Lookups(
        inst, residents, counties, referrals, chains, await stored_claims(s, institution_id, claim_nos)
    )


async def stored_claims(s: AsyncSession, institution_id: uuid.UUID, claim_nos: set[str]) -> dict[str, Claim]:
    """The institution's claims already stored under these numbers."""
    stored = await s.scalars(
        sa.select(Claim).where(Claim.institution_id == institution_id, Claim.claim_no.in_(claim_nos))
    )
    return {c.claim_no: c for c in stored.all()}


class Years:
    """Insurance years with their parameters, each read once per batch."""

    def __init__(self, s: AsyncSession) -> None:
        self.s = s
        self.cache: dict[tuple[str, int], tuple[InsuranceYear, YearParameters] | None] = {}

    async def get(self, county: str, year: int) -> tuple[InsuranceYear, YearParameters] | None:
        if (county, year) not in self.cache:
            # FOR SHARE: a month close (FOR UPDATE) waits for claims being stored and they wait for it,
            # so a claim is either in the month it closes or refused as late — never lost between them
            row = await self.s.scalar(
                sa.select(InsuranceYear)
                .where(InsuranceYear.county_code == county, InsuranceYear.year == year)
                .with_for_update(read=True)
            )
            params = None
            if row is not None:
                params = await self.s.scalar(
                    sa.select(ParameterVersion.parameters).where(
                        ParameterVersion.county_code == county,
                        ParameterVersion.year == year,
                        ParameterVersion.version == row.parameter_version,
                    )
                )
            self.cache[(county, year)] = (row, to_domain(params)) if row is not None and params else None
        return self.cache[(county, year)]


async def grassroots_codes(s: AsyncSession, claims: list[ClaimIn]) -> set[tuple[str, str]]:
    """(county, code) of the grassroots catalogue entries matching a claim's code or its category."""
    codes = {c.diagnosis_icd10 for c in claims} | {c.diagnosis_icd10[:3] for c in claims}
    rows = await s.execute(
        sa.select(RmCatalogueEntry.county_code, RmCatalogueEntry.icd10).where(
            RmCatalogueEntry.catalogue == "grassroots",
            RmCatalogueEntry.active,
            RmCatalogueEntry.icd10.in_(codes),
        )
    )
    return {(county, code) for county, code in rows.all()}


async def deductible_met(s: AsyncSession, chain_ids: list[str]) -> Met:
    """Lock each chain (one batch at a time per chain, across processes; sorted, so no deadlock), then
    read the deductible its stored claims already met, in all and on each leg of its episode."""
    met = Met()
    if not chain_ids:
        return met
    for chain in sorted(chain_ids):
        await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("chain:" + chain))))
    rows = await s.execute(
        sa.select(Claim.chain_id, Claim.leg, sa.func.sum(Claim.deductible_used))
        .where(Claim.chain_id.in_([uuid.UUID(x) for x in chain_ids]))
        .group_by(Claim.chain_id, Claim.leg)
    )
    for chain_id, leg, used in rows.all():
        met.add(str(chain_id), leg, int(used))
    return met
