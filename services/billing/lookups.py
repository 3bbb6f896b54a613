"""Lookups for the use cases: what pricing a batch of claims needs from the database, each fetched once
per batch (set-based) — the institution, residents and their counties, referrals and their chains (read
models of registry and referral events), claim numbers already stored, the insurance years (locked FOR
SHARE), the grassroots catalogue, the deductible met per chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Invalid

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

CHAIN_SQL = sa.text(
    """
    WITH RECURSIVE up(start, id, parent) AS (
        SELECT id, id, replaces_referral_id FROM rm_referrals WHERE id = ANY(:ids)
        UNION ALL
        SELECT up.start, r.id, r.replaces_referral_id FROM up JOIN rm_referrals r ON r.id = up.parent
    )
    SELECT start, id, parent FROM up
    WHERE parent IS NULL OR NOT EXISTS (SELECT 1 FROM rm_referrals r WHERE r.id = up.parent)
    """
)
# Claims naming referrals take this lock shared, the consumer of referral events exclusively: a claim is
# stored as waiting for a referral either before the referral's event is applied (and is then priced
# again by it) or after (and then sees it), never in between.
REFERRALS_LOCK = sa.func.hashtext("billing:referral-events")


async def chain_roots(
    s: AsyncSession, referral_ids: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, uuid.UUID]]:
    """(referral → the first referral of its chain, referral → a referral its chain replaces that billing
    has not heard of yet) for the known referrals among `referral_ids`."""
    chains: dict[uuid.UUID, uuid.UUID] = {}
    missing: dict[uuid.UUID, uuid.UUID] = {}
    for start, root, parent in (await s.execute(CHAIN_SQL, {"ids": list(referral_ids)})).all():
        if parent is None:
            chains[start] = root
        else:
            missing[start] = parent
    return chains, missing


@dataclass
class Lookups:
    institution: RmInstitution
    residents: dict[uuid.UUID, RmResident]
    counties: dict[uuid.UUID, str]  # community → county
    referrals: dict[uuid.UUID, RmReferral]
    chains: dict[uuid.UUID, uuid.UUID]  # referral → the first referral of its chain
    missing: dict[uuid.UUID, uuid.UUID]  # referral → an unknown referral its chain replaces
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
    chains: dict[uuid.UUID, uuid.UUID] = {}
    missing: dict[uuid.UUID, uuid.UUID] = {}
    if referral_ids:
        await s.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(REFERRALS_LOCK)))
        found = await s.scalars(sa.select(RmReferral).where(RmReferral.id.in_(referral_ids)))
        referrals = {r.id: r for r in found.all()}
        chains, missing = await chain_roots(s, referral_ids)
    stored = await s.scalars(
        sa.select(Claim).where(Claim.institution_id == institution_id, Claim.claim_no.in_(claim_nos))
    )
    return Lookups(
        inst, residents, counties, referrals, chains, missing, {c.claim_no: c for c in stored.all()}
    )


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


async def deductible_met(s: AsyncSession, chain_ids: list[str]) -> dict[str, int]:
    """Lock each chain (one batch at a time per chain, across processes; sorted, so no deadlock), then
    read the deductible its stored claims already met."""
    if not chain_ids:
        return {}
    for chain in sorted(chain_ids):
        await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("chain:" + chain))))
    rows = await s.execute(
        sa.select(Claim.chain_id, sa.func.sum(Claim.deductible_used))
        .where(Claim.chain_id.in_([uuid.UUID(x) for x in chain_ids]))
        .group_by(Claim.chain_id)
    )
    return {str(k): int(v) for k, v in rows.all()}
