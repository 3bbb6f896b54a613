"""Claims from HIS systems, one or a batch: every claim of a batch is checked and priced, then all are
stored together or none is. A claim number already stored with the same content is a duplicate (not
counted twice); with different content it is refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role, forbidden
from shared.problems import TYPE_BASE, Problem

from ..domain.claims_batch import FOUR, ClaimFacts, price_claims
from ..domain.parameters import YearParameters
from ..models import (
    Claim,
    InsuranceYear,
    ParameterVersion,
    RmCatalogueEntry,
    RmCommunity,
    RmInstitution,
    RmReferral,
    RmResident,
)
from ..schemas import BatchOut, ClaimIn, ClaimOut
from .common import to_domain

REFERRED = {"accepted", "scheduled", "arrived", "completed"}
CHAIN_SQL = sa.text(
    """
    WITH RECURSIVE up(start, id, parent) AS (
        SELECT id, id, replaces_referral_id FROM rm_referrals WHERE id = ANY(:ids)
        UNION ALL
        SELECT up.start, r.id, r.replaces_referral_id FROM up JOIN rm_referrals r ON r.id = up.parent
    )
    SELECT start, id FROM up WHERE parent IS NULL
    """
)


def fingerprint(c: ClaimIn) -> str:
    raw = json.dumps(c.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


class BatchErrors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, i: int, c: ClaimIn, slug: str, zh: str, en: str) -> None:
        self.items.append(
            {
                "index": i,
                "claim_no": c.claim_no,
                "type": TYPE_BASE + slug,
                "slug": slug,
                "title_zh": zh,
                "title_en": en,
            }
        )

    def raise_if_any(self, status: int = 422) -> None:
        if self.items:
            first = self.items[0]
            raise Problem(
                status,
                first["slug"] if len({x["slug"] for x in self.items}) == 1 else "claims-rejected",
                f"{len(self.items)} 条结算单被拒绝，整批未写入",
                f"{len(self.items)} claim(s) refused; nothing in the batch was stored",
                errors=self.items[:100],
            )


def _check_caller(who: Principal, claims: list[ClaimIn]) -> uuid.UUID:
    if who.role != Role.HIS_SYSTEM or who.institution_id is None:
        raise forbidden("claims come from a hospital's HIS system", "结算单须由医疗机构 HIS 系统提交")
    if any(c.institution_id != who.institution_id for c in claims):
        raise forbidden("a HIS system posts claims of its own institution only", "HIS 只能提交本机构的结算单")
    return who.institution_id


async def ingest_claims(
    s: AsyncSession, who: Principal, claims: list[ClaimIn], now: datetime, detail: bool
) -> BatchOut:
    institution_id = _check_caller(who, claims)
    errors = BatchErrors()
    seen: dict[str, str] = {}
    for i, c in enumerate(claims):
        fp = fingerprint(c)
        if seen.setdefault(c.claim_no, fp) != fp:
            errors.add(
                i,
                c,
                "claim-number-reused",
                "同一结算单号内容不同",
                "the same claim number with different content",
            )
        if c.eligible_cost > c.total_cost:
            errors.add(
                i, c, "eligible-over-total", "合规费用不能超过总费用", "eligible cost exceeds the total cost"
            )
        if c.kind != "outpatient" and (c.dip_group is None or c.dip_points is None):
            errors.add(
                i,
                c,
                "dip-needed",
                "住院与日间病房须有 DIP 病种与分值",
                "inpatient and day-ward claims need a DIP group and points",
            )
    errors.raise_if_any()

    inst = (
        await s.execute(sa.select(RmInstitution).where(RmInstitution.id == institution_id))
    ).scalar_one_or_none()
    if inst is None or not inst.active:
        raise Problem(422, "unknown-institution", "机构不存在或已停用", "unknown or inactive institution")
    residents = {
        r.id: r
        for r in (
            await s.scalars(sa.select(RmResident).where(RmResident.id.in_({c.resident_id for c in claims})))
        ).all()
    }
    counties = dict(
        (
            await s.execute(
                sa.select(RmCommunity.id, RmCommunity.county_code).where(
                    RmCommunity.id.in_({r.community_id for r in residents.values()})
                )
            )
        ).all()
    )
    referral_ids = {c.referral_id for c in claims if c.referral_id}
    referrals = (
        {
            r.id: r
            for r in (await s.scalars(sa.select(RmReferral).where(RmReferral.id.in_(referral_ids)))).all()
        }
        if referral_ids
        else {}
    )
    chains: dict[uuid.UUID, uuid.UUID] = (
        dict((await s.execute(CHAIN_SQL, {"ids": list(referral_ids)})).all()) if referral_ids else {}
    )
    existing = {
        row.claim_no: row
        for row in (
            await s.scalars(
                sa.select(Claim).where(Claim.institution_id == institution_id, Claim.claim_no.in_(seen))
            )
        ).all()
    }
    years: dict[tuple[str, int], tuple[InsuranceYear, YearParameters] | None] = {}

    async def year_of(county: str, year: int) -> tuple[InsuranceYear, YearParameters] | None:
        if (county, year) not in years:
            # FOR SHARE: a month close (FOR UPDATE) waits for claims being stored and they wait for it,
            # so a claim is either in the month it closes or refused as late — never lost between them
            row = await s.scalar(
                sa.select(InsuranceYear)
                .where(InsuranceYear.county_code == county, InsuranceYear.year == year)
                .with_for_update(read=True)
            )
            params = None
            if row is not None:
                params = await s.scalar(
                    sa.select(ParameterVersion.parameters).where(
                        ParameterVersion.county_code == county,
                        ParameterVersion.year == year,
                        ParameterVersion.version == row.parameter_version,
                    )
                )
            years[(county, year)] = (
                (row, to_domain(params)) if row is not None and params is not None else None
            )
        return years[(county, year)]

    fresh: list[tuple[int, ClaimIn, str]] = []  # index, claim, county
    duplicates: list[Claim] = []
    for i, c in enumerate(claims):
        old = existing.get(c.claim_no)
        if old is not None:
            if old.fingerprint != seen[c.claim_no]:
                errors.add(
                    i,
                    c,
                    "claim-number-reused",
                    "该结算单号已用于不同内容",
                    "claim number already stored with different content",
                )
            else:
                duplicates.append(old)
            continue
        if any(f[1].claim_no == c.claim_no for f in fresh):
            continue  # the same claim twice in one batch: stored once
        r = residents.get(c.resident_id)
        if r is None or not r.active:
            errors.add(i, c, "unknown-resident", "参保人不存在", "unknown resident")
            continue
        county = counties.get(r.community_id)
        y = await year_of(county, c.service_date.year) if county else None
        if y is None:
            errors.add(
                i, c, "year-not-budgeted", "该年度尚未编制预算", "no budget for the claim's county and year"
            )
            continue
        if y[0].status == "settled" or c.service_date.month <= y[0].closed_months:
            errors.add(i, c, "period-closed", "结算期已关闭", "the claim's month is closed")
            continue
        if c.referral_id is not None:
            ref = referrals.get(c.referral_id)
            if ref is None or ref.resident_id != c.resident_id:
                errors.add(
                    i,
                    c,
                    "unknown-referral",
                    "转诊单不存在或不属于该参保人",
                    "unknown referral for this resident",
                )
                continue
        assert county is not None
        fresh.append((i, c, county))
    errors.raise_if_any(
        409 if errors.items and all(e["slug"] == "period-closed" for e in errors.items) else 422
    )

    # grassroots catalogue: the code itself or its three-character category
    codes = {c.diagnosis_icd10 for _, c, _ in fresh} | {c.diagnosis_icd10[:3] for _, c, _ in fresh}
    grassroots = (
        set(
            (
                await s.execute(
                    sa.select(RmCatalogueEntry.county_code, RmCatalogueEntry.icd10).where(
                        RmCatalogueEntry.catalogue == "grassroots",
                        RmCatalogueEntry.active,
                        RmCatalogueEntry.icd10.in_(codes),
                    )
                )
            ).all()
        )
        if fresh
        else set()
    )
    chain_ids = sorted({str(chains[c.referral_id]) for _, c, _ in fresh if c.referral_id})
    chain_met: dict[str, int] = {}
    if chain_ids:
        for chain in chain_ids:  # one claim at a time per chain, across processes; sorted: no deadlock
            await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("chain:" + chain))))
        chain_met = {
            str(k): int(v)
            for k, v in (
                await s.execute(
                    sa.select(Claim.chain_id, sa.func.sum(Claim.deductible_used))
                    .where(Claim.chain_id.in_([uuid.UUID(x) for x in chain_ids]))
                    .group_by(Claim.chain_id)
                )
            ).all()
        }
    rows: list[dict[str, Any]] = []
    by_year: dict[tuple[str, int], list[tuple[int, ClaimIn, str]]] = {}
    for item in fresh:
        by_year.setdefault((item[2], item[1].service_date.year), []).append(item)
    for (county, year), items in by_year.items():
        y = years[(county, year)]
        assert y is not None
        facts = []
        for _, c, _ in items:
            ref = referrals.get(c.referral_id) if c.referral_id else None
            facts.append(
                ClaimFacts(
                    tier=inst.tier,
                    kind=c.kind,
                    eligible_cost=c.eligible_cost,
                    grassroots_disease=(county, c.diagnosis_icd10) in grassroots
                    or (county, c.diagnosis_icd10[:3]) in grassroots,
                    referred=ref is not None
                    and ref.status in REFERRED
                    and ref.to_institution_id == institution_id,
                    chain_id=str(chains[c.referral_id]) if c.referral_id else None,
                    dip_points=c.dip_points,
                )
            )
        for (_, c, _), f, p in zip(items, facts, price_claims(facts, y[1], chain_met), strict=True):
            community = residents[c.resident_id].community_id
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "claim_no": c.claim_no,
                    "fingerprint": seen[c.claim_no],
                    "institution_id": institution_id,
                    "institution_community_id": inst.community_id,
                    "tier": inst.tier,
                    "resident_id": c.resident_id,
                    "community_id": community,
                    "county_code": county,
                    "year": year,
                    "month": c.service_date.month,
                    "service_date": c.service_date,
                    "kind": c.kind,
                    "diagnosis_icd10": c.diagnosis_icd10,
                    "grassroots_disease": f.grassroots_disease,
                    "dip_group": c.dip_group,
                    "dip_points": c.dip_points.quantize(FOUR) if c.dip_points is not None else None,
                    "weighted_points": p.weighted_points,
                    "total_cost": c.total_cost,
                    "eligible_cost": c.eligible_cost,
                    "deductible_used": p.deductible_used,
                    "ratio": p.ratio,
                    "insurance_share": p.insurance_share,
                    "referral_id": c.referral_id,
                    "chain_id": uuid.UUID(f.chain_id) if f.chain_id else None,
                    "referred": f.referred,
                    "out_of_community": inst.community_id != community,
                    "received_at": now,
                }
            )
    if rows:
        await s.execute(sa.insert(Claim), rows)
    out = BatchOut(
        created=len(rows),
        duplicates=len(duplicates),
        insurance_share=sum(r["insurance_share"] for r in rows),
    )
    if detail:
        out.claims = [ClaimOut.model_validate(r) for r in rows] + [
            ClaimOut.model_validate(d).model_copy(update={"duplicate": True}) for d in duplicates
        ]
    return out
