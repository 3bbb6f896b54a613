"""Practitioners, teams, residents, contracts, coverage, catalogues through HTTP on the real database."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.devtokens import DevSigner

from .county import COUNTY, add_resident, build_county, national_id, post
from .test_registry_orgs import count


async def test_posting_rules_over_http(client: AsyncClient, registry_engine: AsyncEngine) -> None:
    c = await build_county(client)
    path = f"/v1/practitioners/{c.specialist['id']}/postings"
    short = await client.post(
        path,
        json={"host_institution_id": c.township["id"], "start_date": "2026-03-01", "end_date": "2026-08-31"},
    )
    assert short.status_code == 422 and short.json()["type"].endswith("posting-too-short")
    assert "6个月" in short.json()["title_zh"]
    ok = await client.post(
        path,
        json={"host_institution_id": c.township["id"], "start_date": "2026-03-01", "end_date": "2026-09-01"},
    )
    assert ok.status_code == 201 and len(ok.json()["postings"]) == 1
    junior = await client.post(
        f"/v1/practitioners/{c.village_doctor['id']}/postings",
        json={"host_institution_id": c.township["id"], "start_date": "2026-03-01", "end_date": "2027-03-01"},
    )
    assert junior.status_code == 422 and junior.json()["type"].endswith("posting-title")
    assert await count(registry_engine, "postings") == 1


async def test_practitioner_crud_and_search(client: AsyncClient) -> None:
    c = await build_county(client)
    r = await client.get(
        "/v1/practitioners", params={"institution_id": c.township["id"], "general_practitioner": True}
    )
    assert [p["licence_no"] for p in r.json()["items"]] == ["P1"]
    r = await client.patch(
        f"/v1/practitioners/{c.gp['id']}", json={"version": c.gp["version"], "title": "associate_chief"}
    )
    assert r.status_code == 200 and r.json()["title"] == "associate_chief"
    dup = await client.post(
        "/v1/practitioners",
        json={"licence_no": "P1", "name": "x", "title": "resident", "institution_id": c.village["id"]},
    )
    assert dup.status_code == 409
    r = await client.delete(f"/v1/practitioners/{c.village_doctor['id']}")
    assert r.json()["active"] is False
    assert (await client.get(f"/v1/practitioners/{c.gp['id']}")).json()["name"] == "张医生"


async def test_team_rules(client: AsyncClient) -> None:
    c = await build_county(client)
    team = (await client.get(f"/v1/teams/{c.team['id']}")).json()
    assert {m["role"] for m in team["members"]} == {"lead", "member", "specialist"}
    not_gp = await client.post(
        "/v1/teams",
        json={
            "code": "TEAM2",
            "name": "x",
            "community_id": c.community["id"],
            "institution_id": c.township["id"],
            "lead_practitioner_id": c.village_doctor["id"],
        },
    )
    assert not_gp.status_code == 422 and not_gp.json()["type"].endswith("lead-not-gp")
    wrong_community = await client.post(
        "/v1/teams",
        json={
            "code": "TEAM3",
            "name": "x",
            "community_id": c.other_community["id"],
            "institution_id": c.township["id"],
            "lead_practitioner_id": c.gp["id"],
        },
    )
    assert wrong_community.status_code == 422
    r = await client.patch(f"/v1/teams/{c.team['id']}", json={"version": c.team["version"], "members": []})
    assert r.status_code == 200 and [m["role"] for m in r.json()["members"]] == ["lead"]
    listed = await client.get("/v1/teams", params={"community_id": c.community["id"]})
    assert listed.json()["total"] == 1
    assert (await client.delete(f"/v1/teams/{c.team['id']}")).json()["active"] is False


async def test_resident_pii_is_sealed_masked_and_audited(
    client: AsyncClient, registry_engine: AsyncEngine, signer: DevSigner
) -> None:
    c = await build_county(client)
    nid = national_id()
    res = await add_resident(client, c, nid)
    assert res["national_id_masked"] == nid[:6] + "********" + nid[-4:]
    assert res["phone_masked"] == "138****5678" and "national_id" not in res
    assert res["birth_date"] == "1950-05-01" and res["gender"] == "female"
    async with registry_engine.connect() as conn:
        raw = (await conn.execute(sa.text("SELECT * FROM residents"))).one()._mapping
    stored = " ".join(str(v) for v in raw.values())
    assert nid not in stored and "13812345678" not in stored
    doctor = {
        "Authorization": "Bearer "
        + signer.mint("family_doctor", subject="doctor-7", community_id=c.community["id"])
    }
    his = {
        "Authorization": "Bearer "
        + signer.mint("his_system", subject="his-1", community_id=c.community["id"])
    }
    r = await client.get(f"/v1/residents/{res['id']}/identity", headers=doctor)
    assert r.json() == {"id": res["id"], "national_id": nid, "phone": "13812345678"}
    r = await client.get("/v1/residents", params={"national_id": nid}, headers=his)
    assert [x["id"] for x in r.json()["items"]] == [res["id"]]
    r = await client.get("/v1/residents", params={"phone": "13900000000"})
    assert r.json()["total"] == 0
    async with registry_engine.connect() as conn:
        audit = (
            await conn.execute(sa.text("SELECT actor, action, outcome FROM pii_access_log ORDER BY id"))
        ).all()
    assert [tuple(a) for a in audit] == [
        ("doctor-7", "reveal_identity", "ok"),
        ("his-1", "lookup_by_identifier", "found"),
        ("commission-admin", "lookup_by_identifier", "not_found"),
    ]
    missing = await client.get("/v1/residents/00000000-0000-0000-0000-000000000000/identity")
    assert missing.status_code == 404
    outsider = {
        "Authorization": "Bearer "
        + signer.mint("family_doctor", subject="doctor-9", community_id=c.other_community["id"])
    }
    denied = await client.get(f"/v1/residents/{res['id']}/identity", headers=outsider)
    assert denied.status_code == 404  # another community's resident does not exist for you
    async with registry_engine.connect() as conn:
        tail = (
            await conn.execute(sa.text("SELECT actor, outcome FROM pii_access_log ORDER BY id DESC LIMIT 2"))
        ).all()
    assert [tuple(t) for t in tail] == [
        ("doctor-9", "denied"),
        ("commission-admin", "not_found"),
    ]  # refusals audited


async def test_bad_residents(client: AsyncClient, registry_engine: AsyncEngine) -> None:
    c = await build_county(client)
    nid = national_id()
    bad_check = nid[:17] + ("0" if nid[17] != "0" else "1")
    r = await client.post(
        "/v1/residents", json={"national_id": bad_check, "name": "x", "community_id": c.community["id"]}
    )
    assert r.status_code == 422 and r.json()["title_en"].startswith("Invalid national ID")
    r = await client.post(
        "/v1/residents",
        json={"national_id": nid, "name": "x", "phone": "123", "community_id": c.community["id"]},
    )
    assert r.status_code == 422
    r = await client.post(
        "/v1/residents",
        json={"national_id": nid, "name": "x", "community_id": c.community["id"], "key_populations": ["vip"]},
    )
    assert r.status_code == 422
    r = await client.post(
        "/v1/residents",
        json={
            "national_id": nid,
            "name": "x",
            "community_id": c.community["id"],
            "home_institution_id": c.village["id"],
        },
    )
    assert r.status_code == 201
    again = await client.post(
        "/v1/residents", json={"national_id": nid.lower(), "name": "y", "community_id": c.community["id"]}
    )
    assert again.status_code == 409
    assert (await client.get("/v1/residents", params={"national_id": "123"})).status_code == 422
    assert await count(registry_engine, "residents") == 1


async def test_resident_update_and_search(client: AsyncClient) -> None:
    c = await build_county(client)
    res = await add_resident(client, c, key_populations=["chronic_disease"])
    r = await client.patch(
        f"/v1/residents/{res['id']}",
        json={
            "version": res["version"],
            "phone": "13900001111",
            "key_populations": ["chronic_disease", "disabled"],
        },
    )
    assert r.status_code == 200 and r.json()["phone_masked"] == "139****1111"
    found = await client.get("/v1/residents", params={"key_population": "disabled", "q": "赵"})
    assert found.json()["total"] == 1
    assert (await client.get("/v1/residents", params={"key_population": "registered_poor"})).json()[
        "total"
    ] == 0
    assert (await client.delete(f"/v1/residents/{res['id']}")).json()["active"] is False


async def test_contract_lifecycle_and_one_active_rule(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    res = await add_resident(client, c)
    con = await post(client, "/v1/contracts", {"resident_id": res["id"], "team_id": c.team["id"]})
    assert con["start_date"] == "2026-03-01" and con["end_date"] == "2027-02-28"  # Shanghai date of the clock
    assert con["key_populations"] == ["elderly"]
    second = await client.post("/v1/contracts", json={"resident_id": res["id"], "team_id": c.team["id"]})
    assert second.status_code == 409 and second.json()["type"].endswith("contract-already-active")
    early = await client.post(f"/v1/contracts/{con['id']}/renew", json={"version": con["version"]})
    assert early.status_code == 409 and early.json()["type"].endswith("renewal-too-early")
    no_reason = await client.post(f"/v1/contracts/{con['id']}/terminate", json={"version": 1, "reason": ""})
    assert no_reason.status_code == 422
    done = await client.post(
        f"/v1/contracts/{con['id']}/terminate", json={"version": 1, "reason": "迁出本县"}
    )
    assert done.status_code == 200 and done.json()["status"] == "terminated"
    new = await post(client, "/v1/contracts", {"resident_id": res["id"], "team_id": c.team["id"]})
    listed = await client.get("/v1/contracts", params={"resident_id": res["id"]})
    assert {x["status"] for x in listed.json()["items"]} == {"terminated", "active"}
    assert (await client.get(f"/v1/contracts/{new['id']}")).json()["status"] == "active"
    unknown = await client.post(
        "/v1/contracts", json={"resident_id": "00000000-0000-0000-0000-000000000000", "team_id": c.team["id"]}
    )
    assert unknown.status_code == 422
    assert await count(registry_engine, "contracts") == 2


async def test_renewal_near_the_end(client: AsyncClient) -> None:
    c = await build_county(client)
    res = await add_resident(client, c)
    con = await post(
        client,
        "/v1/contracts",
        {"resident_id": res["id"], "team_id": c.team["id"], "start_date": "2025-03-20"},
    )
    renewed = await client.post(f"/v1/contracts/{con['id']}/renew", json={"version": con["version"]})
    assert renewed.status_code == 201, renewed.text
    body = renewed.json()
    assert body["start_date"] == "2026-03-20" and body["previous_contract_id"] == con["id"]
    assert (await client.get(f"/v1/contracts/{con['id']}")).json()["status"] == "renewed"


async def test_concurrent_contracts_for_one_resident_only_one_wins(client: AsyncClient) -> None:
    c = await build_county(client)
    res = await add_resident(client, c)
    results = await asyncio.gather(
        *[
            client.post("/v1/contracts", json={"resident_id": res["id"], "team_id": c.team["id"]})
            for _ in range(8)
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1 and set(codes) == {201, 409}


async def test_team_of_other_community_cannot_sign(client: AsyncClient) -> None:
    c = await build_county(client)
    res = await add_resident(client, c)
    other_hospital = await post(
        client,
        "/v1/institutions",
        {
            "code": "H2",
            "name": "中医院",
            "tier": "county",
            "kind": "tcm",
            "region_code": COUNTY,
            "community_id": c.other_community["id"],
            "membership": "lead",
        },
    )
    gp2 = await post(
        client,
        "/v1/practitioners",
        {
            "licence_no": "P9",
            "name": "钱",
            "title": "attending",
            "general_practitioner": True,
            "institution_id": other_hospital["id"],
        },
    )
    team2 = await post(
        client,
        "/v1/teams",
        {
            "code": "TEAM9",
            "name": "x",
            "community_id": c.other_community["id"],
            "institution_id": other_hospital["id"],
            "lead_practitioner_id": gp2["id"],
        },
    )
    r = await client.post("/v1/contracts", json={"resident_id": res["id"], "team_id": team2["id"]})
    assert r.status_code == 422 and r.json()["type"].endswith("team-other-community")


async def test_coverage_against_targets(client: AsyncClient) -> None:
    c = await build_county(client)
    # 10 residents: 4 elderly (key), 1 registered poor (key), 5 ordinary adults
    ids = []
    for i in range(10):
        birth = date(1950, 1, 1) if i < 4 else date(1990, 1, 1)
        flags = ["registered_poor"] if i == 4 else []
        ids.append((await add_resident(client, c, national_id(birth, 100 + i), key_populations=flags))["id"])
    for rid in ids[:3] + ids[4:5]:  # sign 3 elderly and the poor resident
        await post(client, "/v1/contracts", {"resident_id": rid, "team_id": c.team["id"]})
    cov = (await client.get(f"/v1/coverage/communities/{c.community['id']}")).json()
    by = {x["population"]: x for x in cov["lines"]}
    assert (by["residents"]["total"], by["residents"]["signed"], by["residents"]["rate"]) == (10, 4, "0.4000")
    assert (by["key_populations"]["total"], by["key_populations"]["signed"]) == (5, 4)
    assert by["key_populations"]["meets_target"] is True and by["registered_poor"]["meets_target"] is True
    county = (await client.get(f"/v1/coverage/counties/{COUNTY}", params={"as_of": "2026-03-01"})).json()
    assert county["lines"] == cov["lines"]
    later = (await client.get(f"/v1/coverage/counties/{COUNTY}", params={"as_of": "2027-03-01"})).json()
    assert later["lines"][0]["signed"] == 0  # contracts ended
    assert (await client.get("/v1/coverage/counties/999999")).status_code == 404


async def test_catalogues(client: AsyncClient, registry_engine: AsyncEngine) -> None:
    await build_county(client)
    e = await post(
        client,
        "/v1/catalogue-entries",
        {
            "county_code": COUNTY,
            "catalogue": "grassroots",
            "tier": "village",
            "icd10": "i10",
            "name": "高血压",
        },
    )
    assert e["icd10"] == "I10"
    dup = await client.post(
        "/v1/catalogue-entries",
        json={
            "county_code": COUNTY,
            "catalogue": "grassroots",
            "tier": "village",
            "icd10": "I10",
            "name": "x",
        },
    )
    assert dup.status_code == 409
    bad = await client.post(
        "/v1/catalogue-entries",
        json={"county_code": COUNTY, "catalogue": "first_in_county", "icd10": "XYZ", "name": "x"},
    )
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-icd10")
    for i in range(50):
        await post(
            client,
            "/v1/catalogue-entries",
            {"county_code": COUNTY, "catalogue": "first_in_county", "icd10": f"K{i:02d}", "name": f"病种{i}"},
        )
    summary = (await client.get(f"/v1/catalogues/{COUNTY}/summary")).json()
    assert summary["first_in_county_diseases"] == 50 and summary["meets_minimum"] is True
    assert summary["grassroots_by_tier"] == {"village": 1}
    first = (
        await client.get("/v1/catalogue-entries", params={"catalogue": "first_in_county", "limit": 1})
    ).json()
    removed = await client.delete(f"/v1/catalogue-entries/{first['items'][0]['id']}")
    assert removed.json()["active"] is False
    summary = (await client.get(f"/v1/catalogues/{COUNTY}/summary")).json()
    assert summary["meets_minimum"] is False
    found = (await client.get("/v1/catalogue-entries", params={"icd10": "i10"})).json()
    assert found["total"] == 1 and (await client.get(f"/v1/catalogue-entries/{e['id']}")).status_code == 200


async def test_roles_and_communities_bound_what_callers_see(
    client: AsyncClient, signer: DevSigner, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    res = await add_resident(client, c)

    def as_(role: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + signer.mint(role, **claims)}

    mine = as_("family_doctor", community_id=c.community["id"])
    theirs = as_("family_doctor", community_id=c.other_community["id"])
    resident = as_("resident", resident_id=res["id"])
    assert (await client.get("/v1/institutions", headers={"Authorization": ""})).status_code == 401
    bad = await client.get("/v1/institutions", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/institutions", headers=mine)).status_code == 200
    r = await client.post("/v1/regions", json={"code": "410100", "name": "x", "level": "city"}, headers=mine)
    assert r.status_code == 403  # reference data is the commission's
    assert (await client.get(f"/v1/residents/{res['id']}", headers=mine)).status_code == 200
    assert (await client.get(f"/v1/residents/{res['id']}", headers=theirs)).status_code == 404
    assert (await client.get("/v1/residents", headers=theirs)).json()["total"] == 0
    listing = await client.get("/v1/residents", params={"community_id": c.community["id"]}, headers=theirs)
    assert listing.status_code == 403
    own = (await client.get("/v1/residents", headers=resident)).json()
    assert [x["id"] for x in own["items"]] == [res["id"]]
    assert (
        await client.post(
            "/v1/contracts", json={"resident_id": res["id"], "team_id": c.team["id"]}, headers=resident
        )
    ).status_code == 403
    cross = await client.post(
        "/v1/contracts", json={"resident_id": res["id"], "team_id": c.team["id"]}, headers=theirs
    )
    assert cross.status_code == 403
    signed = await client.post(
        "/v1/contracts", json={"resident_id": res["id"], "team_id": c.team["id"]}, headers=mine
    )
    assert signed.status_code == 201
    assert (await client.get(f"/v1/contracts/{signed.json()['id']}", headers=theirs)).status_code == 404
    assert (await client.get("/v1/contracts", headers=resident)).json()["total"] == 1
    move = await client.post(
        "/v1/residents",
        headers=theirs,
        json={"national_id": national_id(order=77), "name": "x", "community_id": c.community["id"]},
    )
    assert move.status_code == 403
    assert await count(registry_engine, "residents") == 1


async def test_coverage_as_of_an_impossible_day_is_a_422(client: AsyncClient) -> None:
    """Found by the fuzzer: coverage counts years back from `as_of`, and year 22 made that a 500."""
    await build_county(client)
    for as_of in ("0022-10-15", "1899-12-31", "2200-01-01"):
        r = await client.get(f"/v1/coverage/counties/{COUNTY}", params={"as_of": as_of})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert (
        await client.get(f"/v1/coverage/counties/{COUNTY}", params={"as_of": "2026-03-01"})
    ).status_code == 200
