"""Key populations through HTTP (issue #14 point 7): families under the family-planning special assistance
scheme (计划生育特别扶助, 002 §21) are recorded, found, counted as a key population in the coverage
report and shown as a group of their own."""

from __future__ import annotations

from datetime import date

from httpx import AsyncClient

from ..integration.county import COUNTY, add_resident, build_county, national_id, post


async def test_family_planning_special_assistance_families_are_a_key_population(client: AsyncClient) -> None:
    c = await build_county(client)
    adult = date(1968, 6, 1)  # 57: no age group of their own
    family = await add_resident(
        client, c, national_id(adult, 301), key_populations=["family_planning_special"]
    )
    assert family["key_populations"] == ["family_planning_special"]
    await add_resident(client, c, national_id(adult, 302))
    found = (await client.get("/v1/residents", params={"key_population": "family_planning_special"})).json()
    assert [x["id"] for x in found["items"]] == [family["id"]]

    contract = await post(client, "/v1/contracts", {"resident_id": family["id"], "team_id": c.team["id"]})
    assert contract["key_populations"] == ["family_planning_special"]

    report = (await client.get(f"/v1/coverage/counties/{COUNTY}")).json()
    key = {x["population"]: x for x in report["lines"]}["key_populations"]
    assert (key["total"], key["signed"], key["rate"]) == (1, 1, "1.0000")
    groups = {x["population"]: x for x in report["key_populations"]}
    assert (groups["family_planning_special"]["total"], groups["family_planning_special"]["signed"]) == (1, 1)
    assert set(groups) == {
        "elderly",
        "child",
        "pregnant_postpartum",
        "disabled",
        "chronic_disease",
        "severe_mental",
        "registered_poor",
        "family_planning_special",
    }
    assert groups["elderly"] == {"population": "elderly", "total": 0, "signed": 0, "rate": None}
