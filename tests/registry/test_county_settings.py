"""The county's registry rules as the commission sets them (issue #14 point 5): the seeds' numbers until
a change, a change with its reason and history, and the coverage report, the catalogue summary and the
posting check each following the rules in force. Who may change them, and what is refused."""

from __future__ import annotations

from datetime import date
from typing import Any

from httpx import AsyncClient

from shared.devtokens import DevSigner

from ..integration.county import COUNTY, add_resident, build_county, national_id, post

URL = f"/v1/counties/{COUNTY}/registry-settings"


async def change(
    client: AsyncClient, reason: str = "县卫健委 2026 第 5 号文", **changes: Any
) -> dict[str, Any]:
    r = await client.put(URL, json={"changes": changes, "reason": reason})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def by_population(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {x["population"]: x for x in report["lines"]}


async def test_the_commission_changes_a_rule_and_the_history_keeps_who_and_why(client: AsyncClient) -> None:
    await build_county(client)
    before = (await client.get(URL)).json()
    assert before["version"] == 0 and before["changed_by"] is None
    assert before["settings"] == {
        "coverage_target_residents": "0.30",
        "coverage_target_key_populations": "0.60",
        "coverage_target_registered_poor": "1.00",
        "first_in_county_minimum": 50,
        "posting_min_months": 6,
        "posting_physician_min_title": "attending",
    }
    body = {"changes": {"coverage_target_residents": "0.35"}, "reason": "2026 年目标 35%"}
    headers = {"Idempotency-Key": "registry-settings-1"}
    first = await client.put(URL, json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["changed"] == {"coverage_target_residents": "0.35"}
    again = await client.put(URL, json=body, headers=headers)  # a retry: the same answer, no second version
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    second = await change(client, "首诊目录先定 40 种", first_in_county_minimum=40)
    assert second["version"] == 2 and second["settings"]["coverage_target_residents"] == "0.35"
    now = (await client.get(URL)).json()
    assert now == second and now["changed_by"] == "commission-admin"
    history = (await client.get(f"{URL}/history")).json()
    assert [(h["version"], h["changed"], h["reason"]) for h in history] == [
        (2, {"first_in_county_minimum": 40}, "首诊目录先定 40 种"),
        (1, {"coverage_target_residents": "0.35"}, "2026 年目标 35%"),
    ]


async def test_the_coverage_report_follows_the_countys_targets(client: AsyncClient) -> None:
    c = await build_county(client)
    ids = [(await add_resident(client, c, national_id(date(1990, 1, 1), 200 + i)))["id"] for i in range(10)]
    for rid in ids[:3]:
        await post(client, "/v1/contracts", {"resident_id": rid, "team_id": c.team["id"]})
    report = (await client.get(f"/v1/coverage/counties/{COUNTY}")).json()
    assert report["settings_version"] == 0
    residents = by_population(report)["residents"]
    assert (residents["rate"], residents["target"], residents["meets_target"]) == ("0.3000", "0.30", True)

    await change(client, coverage_target_residents="0.35")

    for path in (f"/v1/coverage/counties/{COUNTY}", f"/v1/coverage/communities/{c.community['id']}"):
        report = (await client.get(path)).json()
        assert report["settings_version"] == 1, path
        residents = by_population(report)["residents"]
        assert (residents["rate"], residents["target"], residents["meets_target"]) == (
            "0.3000",
            "0.35",
            False,
        )
    # a day before the change, the county's target was still the seeds' 30 %
    yesterday = (await client.get(f"/v1/coverage/counties/{COUNTY}", params={"as_of": "2026-02-28"})).json()
    assert yesterday["settings_version"] == 0 and by_population(yesterday)["residents"]["target"] == "0.30"


async def test_the_catalogue_summary_follows_the_countys_minimum(client: AsyncClient) -> None:
    await build_county(client)
    for i in range(3):
        entry = {
            "county_code": COUNTY,
            "catalogue": "first_in_county",
            "icd10": f"K{i:02d}",
            "name": f"病种{i}",
        }
        await post(client, "/v1/catalogue-entries", entry)
    summary = (await client.get(f"/v1/catalogues/{COUNTY}/summary")).json()
    assert (summary["first_in_county_minimum"], summary["meets_minimum"]) == (50, False)
    await change(client, first_in_county_minimum=3)
    summary = (await client.get(f"/v1/catalogues/{COUNTY}/summary")).json()
    assert (summary["first_in_county_minimum"], summary["meets_minimum"]) == (3, True)


async def test_the_posting_check_follows_the_countys_rules(client: AsyncClient) -> None:
    c = await build_county(client)
    specialist = f"/v1/practitioners/{c.specialist['id']}/postings"  # a chief physician of the hospital
    gp = f"/v1/practitioners/{c.gp['id']}/postings"  # an attending of the township centre
    six_months = {"start_date": "2026-03-01", "end_date": "2026-09-01"}
    year = {"start_date": "2026-03-01", "end_date": "2027-03-01"}
    await change(client, posting_min_months=12, posting_physician_min_title="associate_chief")

    short = await client.post(specialist, json={"host_institution_id": c.township["id"], **six_months})
    assert short.status_code == 422 and short.json()["type"].endswith("/posting-too-short")
    assert "12个月" in short.json()["title_zh"] and "12 months" in short.json()["title_en"]
    attending = await client.post(gp, json={"host_institution_id": c.village["id"], **year})
    assert attending.status_code == 422 and attending.json()["type"].endswith("/posting-title")
    assert "副主任医师" in attending.json()["title_zh"] and "associate_chief" in attending.json()["title_en"]
    chief = await client.post(specialist, json={"host_institution_id": c.township["id"], **year})
    assert chief.status_code == 201, chief.text

    await change(client, "恢复省定标准", posting_min_months=6, posting_physician_min_title="attending")
    ok = await client.post(gp, json={"host_institution_id": c.village["id"], **six_months})
    assert ok.status_code == 201, ok.text


async def test_only_the_commission_changes_the_rules(client: AsyncClient, signer: DevSigner) -> None:
    c = await build_county(client)
    body = {"changes": {"coverage_target_residents": "0.10"}, "reason": "x"}
    for role, claims in (
        ("family_doctor", {"community_id": c.community["id"]}),
        ("insurance_officer", {}),
        ("his_system", {"community_id": c.community["id"]}),
    ):
        headers = {"Authorization": "Bearer " + signer.mint(role, **claims)}
        r = await client.put(URL, json=body, headers=headers)
        assert r.status_code == 403 and r.json()["type"].endswith("/commission-only"), (role, r.text)
        assert r.json()["title_zh"] and r.json()["title_en"]
        assert (await client.get(URL, headers=headers)).status_code == 200  # anyone signed in reads them
    assert (await client.get(f"{URL}/history")).json() == []


async def test_nonsense_is_refused_in_both_languages_and_nothing_is_written(client: AsyncClient) -> None:
    await build_county(client)
    for changes, code in [
        ({"coverage_target_residents": "1.5"}, "bad-setting"),
        ({"coverage_target_key_populations": 0.6}, "bad-setting"),  # a float: a share is sent as "0.60"
        ({"first_in_county_minimum": -5}, "bad-setting"),
        ({"posting_min_months": "six"}, "bad-setting"),
        ({"posting_min_months": 0}, "bad-setting"),
        ({"posting_physician_min_title": "nurse_in_charge"}, "bad-setting"),
        ({"coverage_target_residents": "0.35", "minimum_posting": 3}, "unknown-setting"),
    ]:
        r = await client.put(URL, json={"changes": changes, "reason": "x"})
        assert r.status_code == 422, (changes, r.text)
        problem = r.json()
        assert problem["type"].endswith(f"/{code}"), problem
        assert problem["title_zh"] and problem["title_en"] and problem["title_zh"] != problem["title_en"]
        assert r.headers["content-type"] == "application/problem+json"
    for body in ({"changes": {}, "reason": "x"}, {"changes": {"posting_min_months": 8}}):
        assert (await client.put(URL, json=body)).status_code == 422
    assert (await client.get(URL)).json()["version"] == 0  # nothing half-written
    assert (await client.get(f"{URL}/history")).json() == []


async def test_an_unknown_county_is_not_found(client: AsyncClient) -> None:
    await build_county(client)
    body = {"changes": {"posting_min_months": 8}, "reason": "x"}
    for code in ("990000", "410000"):  # no such region; a province is no county
        path = f"/v1/counties/{code}/registry-settings"
        for r in (
            await client.get(path),
            await client.get(f"{path}/history"),
            await client.put(path, json=body),
        ):
            assert r.status_code == 404 and r.json()["type"].endswith("/unknown-county"), r.text
    assert (await client.get("/v1/counties/abc/registry-settings")).status_code == 422
