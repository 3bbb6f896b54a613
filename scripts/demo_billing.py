"""A quarter of the demo county's insurance year through the gateway (`make up` first): the commission
creates an insurance officer and HIS clients, the officer sets the 2026 parameters and derives the
budgets, prepays January–March, the hospitals' HIS systems post a batch of claims each, the officer
closes the quarter and reads the evaluation, a community statement and the trial balance.
Running it again is safe: every step is idempotent (runs post once, claim numbers are not doubled)."""

from __future__ import annotations

import os
import random
import sys
from datetime import date, timedelta
from typing import Any

import httpx

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "yigongti-admin")
COUNTY, YEAR = "411081", 2026
rng = random.Random(2026)


def ok(r: httpx.Response, *also: int) -> Any:
    if r.status_code >= 300 and r.status_code not in also:
        sys.exit(f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}")
    return r.json()


def login(gw: httpx.Client, **form: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + ok(gw.post("/oauth/token", data=form))["access_token"]}


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f} 元"


def main() -> None:
    gw = httpx.Client(base_url=GATEWAY, timeout=60)
    admin = login(gw, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    communities = ok(gw.get("/api/registry/v1/communities", headers=admin))["items"]
    communities = [c for c in communities if c["county_code"] == COUNTY]
    ok(
        gw.post(
            "/admin/users",
            headers=admin,
            json={"username": "officer", "password": "officer-pass-2026", "role": "insurance_officer"},
        ),
        409,
    )
    officer = login(gw, grant_type="password", username="officer", password="officer-pass-2026")
    base = f"/api/billing/v1/insurance-years/{COUNTY}/{YEAR}"
    params = {
        "individual_contribution": 38_000,  # 380 元
        "fiscal_subsidy": 64_000,  # 640 元
        "catastrophic_rate": "0.08",
        "tiers": {
            "village": {"ratio": "0.90", "deductible": 0},
            "community": {"ratio": "0.85", "deductible": 20_000},
            "township": {"ratio": "0.85", "deductible": 20_000},
            "county": {"ratio": "0.70", "deductible": 60_000},
        },
        "unreferred_county_ratio": "0.55",
        "dip_budget_rate": "0.40",
        "dip_estimated_point_value": "95",
        "communities": [{"community_id": c["id"], "covered_residents": 9_000} for c in communities],
    }
    ok(gw.post(f"{base}/parameters", headers=officer, json=params), 409)
    ok(gw.post(f"{base}/budgets", headers=officer))
    for b in ok(gw.get(f"{base}/budgets", headers=officer)):
        name = next(c["name"] for c in communities if c["id"] == b["community_id"])
        print(f"\n{name} {YEAR} budget, derived line by line:")
        for line in b["derivation"]:
            value = line["fen"] if "residents" in line["label"] else yuan(line["fen"])
            print(f"  {line['label']:<28} {value:>22}")
    for month in (1, 2, 3):
        ok(gw.post(f"{base}/prepayments/{month}", headers=officer))

    posted = 0
    for c in communities:
        institutions = ok(
            gw.get(
                "/api/registry/v1/institutions", headers=admin, params={"community_id": c["id"], "limit": 200}
            )
        )["items"]
        residents = ok(
            gw.get(
                "/api/registry/v1/residents", headers=admin, params={"community_id": c["id"], "limit": 200}
            )
        )["items"]
        for inst in [i for i in institutions if i["kind"] in ("general", "tcm", "township_centre")][:3]:
            client_id = f"his-{inst['code']}"
            ok(
                gw.post(
                    "/admin/clients",
                    headers=admin,
                    json={
                        "client_id": client_id,
                        "client_secret": f"secret-{inst['code']}-2026",
                        "institution_id": inst["id"],
                        "community_id": c["id"],
                    },
                ),
                409,
            )
            his = login(
                gw,
                grant_type="client_credentials",
                client_id=client_id,
                client_secret=f"secret-{inst['code']}-2026",
            )
            claims = []
            for n in range(50):
                kind = "inpatient" if n % 5 == 0 else "outpatient"
                eligible = (
                    rng.randint(300_000, 2_000_000) if kind == "inpatient" else rng.randint(3_000, 40_000)
                )
                claim: dict[str, Any] = {
                    "claim_no": f"DEMO-{inst['code']}-{n}",
                    "institution_id": inst["id"],
                    "resident_id": rng.choice(residents)["id"],
                    "kind": kind,
                    "service_date": (date(YEAR, 1, 2) + timedelta(days=rng.randrange(88))).isoformat(),
                    "diagnosis_icd10": rng.choice(["I10", "E11.9", "J18.9", "I63.9", "K29.7"]),
                    "total_cost": eligible + 2_000,
                    "eligible_cost": eligible,
                }
                if kind == "inpatient":
                    claim |= {"dip_group": "DEMO-1", "dip_points": str(rng.randint(300, 3000))}
                claims.append(claim)
            result = ok(gw.post("/api/billing/v1/claims:batch", headers=his, json={"claims": claims}), 409)
            if "created" in result:
                posted += result["created"]
                print(
                    f"{inst['name']}: {result['created']} claims stored, {result['duplicates']} duplicates, "
                    f"insurance pays {yuan(result['insurance_share'])}"
                )
            else:
                print(f"{inst['name']}: {result['title_en']} (the quarter is already closed)")
    for month in (1, 2, 3):
        ok(gw.post(f"{base}/months/{month}/close", headers=officer))
    print("\nQ1 evaluation:")
    for e in ok(gw.get(f"{base}/evaluation", headers=officer, params={"quarter": 1})):
        name = next(c["name"] for c in communities if c["id"] == e["community_id"])
        print(
            f"  {name}: spent {yuan(e['spent'])} of {yuan(e['elapsed_budget'])} elapsed budget "
            f"({float(e['spend_rate']):.1%}), projected year-end {yuan(e['projected_result'])} → {e['flag']}"
        )
    st = ok(
        gw.get(
            f"/api/billing/v1/communities/{communities[0]['id']}/statement",
            headers=officer,
            params={"year": YEAR},
        )
    )
    print(
        f"\n{communities[0]['name']} balances: "
        + ", ".join(f"{k} {yuan(v)}" for k, v in st["balances"].items())
    )
    tb = ok(gw.get(f"{base}/trial-balance", headers=officer))
    print(
        f"trial balance: {tb['journals']} journals, debit {yuan(tb['total_debit'])} = credit "
        f"{yuan(tb['total_credit'])}: balanced={tb['balanced']}"
    )


if __name__ == "__main__":
    main()
