"""Calls the billing tests share: parameters for a year, claims from a hospital's HIS, the officer's runs."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from ..integration.county import COUNTY
from ..referral.world import World

TIERS = {
    "village": {"ratio": "0.90", "deductible": 10_000},
    "community": {"ratio": "0.85", "deductible": 20_000},
    "township": {"ratio": "0.85", "deductible": 20_000},
    "county": {"ratio": "0.70", "deductible": 60_000},
}


def officer(w: World) -> dict[str, str]:
    return {"Authorization": "Bearer " + w.signer.mint("insurance_officer", subject="officer@医保局")}


def his(w: World, institution: str) -> dict[str, str]:
    return w.token("his_system", institution, subject=f"his@{institution}")


def parameters(w: World, covered: tuple[int, int], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "individual_contribution": 40_000,
        "fiscal_subsidy": 60_000,
        "catastrophic_rate": "0.08",
        "tiers": TIERS,
        "unreferred_county_ratio": "0.50",
        "dip_budget_rate": "0.40",
        "dip_estimated_point_value": "100",
        "communities": [
            {"community_id": w.ids["community1"], "covered_residents": covered[0]},
            {"community_id": w.ids["community2"], "covered_residents": covered[1]},
        ],
    }
    body.update(overrides)
    return body


async def open_year(c: AsyncClient, w: World, year: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = await c.post(f"/v1/insurance-years/{COUNTY}/{year}/parameters", json=body, headers=officer(w))
    assert r.status_code == 201, r.text
    r = await c.post(f"/v1/insurance-years/{COUNTY}/{year}/budgets", headers=officer(w))
    assert r.status_code == 200 and r.json()["posted"], r.text
    r = await c.get(f"/v1/insurance-years/{COUNTY}/{year}/budgets", headers=officer(w))
    by_id = {b["community_id"]: b for b in r.json()}
    return [by_id[w.ids["community1"]], by_id[w.ids["community2"]]]


def claim(
    w: World, no: str, institution: str, resident: str, kind: str, day: str, eligible: int, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "claim_no": no,
        "institution_id": w.ids[institution],
        "resident_id": w.ids[resident],
        "kind": kind,
        "service_date": day,
        "diagnosis_icd10": "J18.9",
        "total_cost": eligible + 5_000,
        "eligible_cost": eligible,
    }
    body.update(extra)
    return body


async def post_claims(
    c: AsyncClient, w: World, institution: str, claims: list[dict[str, Any]], status: int = 200
) -> dict[str, Any]:
    r = await c.post("/v1/claims:batch?detail=true", json={"claims": claims}, headers=his(w, institution))
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def run(c: AsyncClient, w: World, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
    r = await c.post(f"/v1/insurance-years/{COUNTY}/{path}", json=body, headers=officer(w))
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data
