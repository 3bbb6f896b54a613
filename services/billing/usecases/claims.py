"""Claims from HIS systems, one or a batch: every claim of a batch is checked and priced, then all are
stored together or none is. A claim number already stored with the same content is a duplicate (not
counted twice); with different content it is refused. Only an insurance-designated institution's claims
are taken (定点)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.principal import Principal

from ..access import check_claim_sender
from ..domain.claims import dated_in_future, leg_of
from ..domain.claims_batch import FOUR, ClaimFacts, Priced, price_claims
from ..domain.repricing import Standing, referral_standing
from ..lookups import Lookups, Years, deductible_met, grassroots_codes, load_lookups, stored_claims
from ..models import Claim
from ..schemas import BatchOut, ClaimIn, ClaimOut
from .batch import Refusals


def fingerprint(c: ClaimIn) -> str:
    raw = json.dumps(c.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


class BatchErrors(Refusals):
    """Every refused claim of a batch, so that the HIS can fix them all in one go. Refused only because
    the month is closed is a `Conflict` (the state, not the claims, is in the way)."""

    def __init__(self) -> None:
        super().__init__("claim_no", "claims-rejected", ("条结算单", "claim(s)"), ("period-closed",))

    def add(self, i: int, c: ClaimIn, code: str, zh: str, en: str) -> None:
        self.refuse(i, c.claim_no, code, zh, en)


Fresh = list[tuple[int, ClaimIn, str]]  # index in the batch, claim, county
REUSED = (
    "claim-number-reused",
    "该结算单号已用于不同内容",
    "claim number already stored with different content",
)


def check_shapes(claims: list[ClaimIn], errors: BatchErrors, now: datetime) -> dict[str, str]:
    """What needs no database; returns each claim number's fingerprint."""
    seen: dict[str, str] = {}
    for i, c in enumerate(claims):
        if dated_in_future(c.service_date, now):
            errors.add(
                i,
                c,
                "service-date-in-future",
                "就诊日期晚于今天（北京时间）",
                "the service date is after today (China time)",
            )
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
    return seen


async def triage(
    claims: list[ClaimIn], seen: dict[str, str], look: Lookups, years: Years, errors: BatchErrors
) -> tuple[Fresh, list[Claim]]:
    """Split the batch into new claims, duplicates of stored ones, and refusals (into `errors`)."""
    fresh: Fresh = []
    taken: set[str] = set()  # claim numbers already in `fresh`
    duplicates: list[Claim] = []
    for i, c in enumerate(claims):
        old = look.existing.get(c.claim_no)
        if old is not None:
            if old.fingerprint != seen[c.claim_no]:
                errors.add(i, c, *REUSED)
            else:
                duplicates.append(old)
            continue
        if c.claim_no in taken:
            continue  # the same claim twice in one batch: stored once
        if not look.institution.insurance_designated:
            errors.add(
                i,
                c,
                "institution-not-designated",
                "该机构不是医保定点医疗机构，其结算单不予报销",
                "the institution is not designated by the insurance agency (定点); its claims are not reimbursed",
            )
            continue
        r = look.residents.get(c.resident_id)
        if r is None or not r.active:
            errors.add(i, c, "unknown-resident", "参保人不存在", "unknown resident")
            continue
        county = look.counties.get(r.community_id)
        y = await years.get(county, c.service_date.year) if county else None
        if county is None or y is None:
            errors.add(
                i, c, "year-not-budgeted", "该年度尚未编制预算", "no budget for the claim's county and year"
            )
            continue
        if y[0].status == "settled" or c.service_date.month <= y[0].closed_months:
            errors.add(i, c, "period-closed", "结算期已关闭", "the claim's month is closed")
            continue
        ref = look.referrals.get(c.referral_id) if c.referral_id else None
        if ref is not None and ref.resident_id != c.resident_id:  # an unknown one: priced provisionally
            errors.add(
                i, c, "unknown-referral", "转诊单不存在或不属于该参保人", "unknown referral for this resident"
            )
            continue
        fresh.append((i, c, county))
        taken.add(c.claim_no)
    return fresh, duplicates


def standing_of(c: ClaimIn, look: Lookups) -> tuple[Standing, uuid.UUID | None]:
    """How the claim's referral prices it, and the referral it waits for if it must wait: the one named,
    or one its chain continues or replaces that billing has not heard of yet."""
    if c.referral_id is None:
        return Standing.UNREFERRED, None
    ref = look.referrals.get(c.referral_id)
    standing = referral_standing(
        ref.status if ref else None,
        ref is not None and ref.resident_id == c.resident_id,
        ref is not None and ref.to_institution_id == look.institution.id,
        c.referral_id in look.chains.roots,
    )
    waits_for = (
        look.chains.missing.get(c.referral_id, c.referral_id) if standing is Standing.WAITING else None
    )
    return standing, waits_for


def facts_of(c: ClaimIn, county: str, look: Lookups, grassroots: set[tuple[str, str]]) -> ClaimFacts:
    standing, _ = standing_of(c, look)
    # a waiting claim is outside every chain until its referral is known (it meets no one's deductible)
    waiting = standing is Standing.WAITING
    chain = look.chains.roots.get(c.referral_id) if c.referral_id and not waiting else None
    referred = standing is Standing.REFERRED
    ref = look.referrals.get(c.referral_id) if c.referral_id else None
    return ClaimFacts(
        tier=look.institution.tier,
        kind=c.kind,
        eligible_cost=c.eligible_cost,
        grassroots_disease=(county, c.diagnosis_icd10) in grassroots
        or (county, c.diagnosis_icd10[:3]) in grassroots,
        referred=referred,
        chain_id=str(chain) if chain else None,
        dip_points=c.dip_points,
        leg=leg_of(ref.direction if ref else None, referred, c.referral_id in look.chains.continued),
    )


async def ingest_claims(
    s: AsyncSession, who: Principal, claims: list[ClaimIn], now: datetime, detail: bool
) -> BatchOut:
    institution_id = check_claim_sender(who, (c.institution_id for c in claims))
    errors = BatchErrors()
    seen = check_shapes(claims, errors, now)
    errors.raise_if_any()
    look = await load_lookups(s, institution_id, claims, set(seen))
    years = Years(s)
    fresh, duplicates = await triage(claims, seen, look, years, errors)
    errors.raise_if_any()

    grassroots = await grassroots_codes(s, [c for _, c, _ in fresh]) if fresh else set()
    roots = look.chains.roots
    met = await deductible_met(
        s, sorted({str(roots[c.referral_id]) for _, c, _ in fresh if c.referral_id in roots})
    )
    by_year: dict[tuple[str, int], Fresh] = {}
    for item in fresh:
        by_year.setdefault((item[2], item[1].service_date.year), []).append(item)
    rows: list[dict[str, Any]] = []
    for (county, year), items in by_year.items():
        y = years.cache[(county, year)]
        assert y is not None
        facts = [facts_of(c, county, look, grassroots) for _, c, _ in items]
        priced = price_claims(facts, y[1], met.total, met.in_leg)
        for (_, c, _), f, p in zip(items, facts, priced, strict=True):
            rows.append(claim_row(c, f, p, look, county, seen[c.claim_no], now))
    rows, raced = await store(s, institution_id, rows, {c.claim_no: i for i, c, _ in fresh}, errors)
    errors.raise_if_any()
    duplicates += raced
    out = BatchOut(
        created=len(rows), duplicates=len(duplicates), insurance_share=sum(r["insurance_share"] for r in rows)
    )
    if detail:
        out.claims = [ClaimOut.model_validate(r) for r in rows] + [
            ClaimOut.model_validate(d).model_copy(update={"duplicate": True}) for d in duplicates
        ]
    return out


async def store(
    s: AsyncSession,
    institution_id: uuid.UUID,
    rows: list[dict[str, Any]],
    index: dict[str, int],
    errors: BatchErrors,
) -> tuple[list[dict[str, Any]], list[Claim]]:
    """Insert the new claims; (the rows stored, the claims another batch stored first). A batch racing
    this one with the same new claim number got there first when its insert wins the unique (institution,
    number) and commits: the same content is then a duplicate, as if it had been stored before this batch
    began; other content is refused (into `errors`). The deductible stays right: a chain's batches take
    its lock in turn, so this batch read the other's claims before pricing its own."""
    if not rows:
        return [], []
    stmt = (
        insert(Claim)
        .on_conflict_do_nothing(index_elements=["institution_id", "claim_no"])
        .returning(Claim.claim_no)
    )
    inserted = set((await s.scalars(stmt, rows)).all())
    if len(inserted) == len(rows):
        return rows, []
    lost = {r["claim_no"]: r for r in rows if r["claim_no"] not in inserted}
    raced = []
    for no, claim in (await stored_claims(s, institution_id, set(lost))).items():
        if claim.fingerprint == lost[no]["fingerprint"]:
            raced.append(claim)
        else:
            errors.refuse(index[no], no, *REUSED)
    return [r for r in rows if r["claim_no"] in inserted], raced


def claim_row(
    c: ClaimIn, f: ClaimFacts, p: Priced, look: Lookups, county: str, fp: str, now: datetime
) -> dict[str, Any]:
    community = look.residents[c.resident_id].community_id
    _, waits_for = standing_of(c, look)
    return {
        "id": uuid.uuid4(),
        "claim_no": c.claim_no,
        "fingerprint": fp,
        "institution_id": look.institution.id,
        "institution_community_id": look.institution.community_id,
        "tier": look.institution.tier,
        "resident_id": c.resident_id,
        "community_id": community,
        "county_code": county,
        "year": c.service_date.year,
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
        "leg": str(f.leg),
        "out_of_community": look.institution.community_id != community,
        "received_at": now,
        "pricing": "provisional" if waits_for else "final",
        "awaiting_referral_id": waits_for,
        "provisional_share": p.insurance_share if waits_for else None,
        "repriced_at": None,
    }
