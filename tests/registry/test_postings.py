"""Postings through HTTP (issue #14 point 6, 004 §七): nurses, infection-control, CDC and quality-control
staff are posted too, stationed or rotating on set weekdays; a posted physician is stationed. The
practitioner's event (contract version 3) carries the profession and every posting's kind, role and days."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.readmodel import MAPPERS as REFERRAL_READ_MODEL
from shared import contracts
from shared.contracts import registry as reg
from shared.events import EventEnvelope

from ..integration.county import County, build_county, post
from ..integration.test_registry_orgs import count

SPRING = {"start_date": "2026-03-03", "end_date": "2026-06-30"}


async def nurse(client: AsyncClient, c: County, licence: str = "N1", **extra: Any) -> dict[str, Any]:
    body = {
        "licence_no": licence,
        "name": "刘护士长",
        "profession": "nurse",
        "title": "nurse_in_charge",
        "institution_id": c.hospital["id"],
        **extra,
    }
    return await post(client, "/v1/practitioners", body)


async def last_practitioner_event(engine: AsyncEngine, ident: str) -> EventEnvelope:
    async with engine.connect() as conn:
        payload = await conn.scalar(
            sa.text(
                "SELECT payload FROM outbox WHERE topic = 'registry.practitioners' AND key = :k "
                "ORDER BY seq DESC LIMIT 1"
            ),
            {"k": ident},
        )
    return EventEnvelope.model_validate(payload)


async def test_a_nurse_rotates_on_tuesdays_and_thursdays(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    n = await nurse(client, c)
    assert (n["profession"], n["title"]) == ("nurse", "nurse_in_charge")
    path = f"/v1/practitioners/{n['id']}/postings"
    rotating = {"kind": "rotating", "role": "infection_control", "weekdays": ["thu", "tue"], **SPRING}
    r = await client.post(path, json={"host_institution_id": c.township["id"], **rotating})
    assert r.status_code == 201, r.text  # four months, no attending title: a physician's rules only
    [posting] = r.json()["postings"]
    assert (posting["kind"], posting["role"], posting["weekdays"]) == (
        "rotating",
        "infection_control",
        ["tue", "thu"],
    )
    other_days = {**rotating, "weekdays": ["mon", "wed"], "role": "nursing"}
    r = await client.post(path, json={"host_institution_id": c.village["id"], **other_days})
    assert r.status_code == 201, r.text  # the other days of the same weeks, at the village clinic
    clash = await client.post(
        path, json={"host_institution_id": c.village["id"], **rotating, "weekdays": ["thu"]}
    )
    assert clash.status_code == 422 and clash.json()["type"].endswith("/posting-overlap")
    no_days = await client.post(
        path, json={"host_institution_id": c.village["id"], "kind": "rotating", **SPRING}
    )
    assert no_days.status_code == 422 and no_days.json()["type"].endswith("/posting-weekdays")
    assert await count(registry_engine, "postings") == 2

    event = await last_practitioner_event(registry_engine, n["id"])
    assert event.schemaversion == 3 and event.data["profession"] == "nurse"
    assert [(p["kind"], p["role"], p["weekdays"]) for p in event.data["postings"]] == [
        ("rotating", "infection_control", ["tue", "thu"]),
        ("rotating", "nursing", ["mon", "wed"]),
    ]
    data = contracts.decode(event)
    assert type(data) is reg.Practitioner is reg.PractitionerV3
    _, mapper = REFERRAL_READ_MODEL[reg.Practitioner]  # the referral service still reads it
    assert mapper(data) == {"institution_id": data.institution_id, "title": "nurse_in_charge", "profession": "nurse"}


async def test_cdc_and_quality_control_staff_are_posted_too(client: AsyncClient) -> None:
    c = await build_county(client)
    cdc = await post(
        client,
        "/v1/practitioners",
        {
            "licence_no": "CDC1",
            "name": "疾控监督员",
            "profession": "public_health",
            "title": "resident",
            "institution_id": c.hospital["id"],
        },
    )
    r = await client.post(
        f"/v1/practitioners/{cdc['id']}/postings",
        json={"host_institution_id": c.township["id"], "kind": "rotating", "weekdays": ["fri"], **SPRING},
    )
    assert (
        r.status_code == 201 and r.json()["postings"][0]["role"] == "public_health"
    )  # the profession's seat
    qc = await client.post(
        f"/v1/practitioners/{c.gp['id']}/postings",
        json={
            "host_institution_id": c.village["id"],
            "role": "quality_control",
            "kind": "rotating",
            "weekdays": ["wed"],
            **SPRING,
        },
    )
    assert qc.status_code == 201 and qc.json()["postings"][0]["role"] == "quality_control"
    listed = await client.get("/v1/practitioners", params={"profession": "public_health"})
    assert [p["licence_no"] for p in listed.json()["items"]] == ["CDC1"]


async def test_a_posted_physician_is_stationed_and_old_requests_still_mean_that(client: AsyncClient) -> None:
    c = await build_county(client)
    path = f"/v1/practitioners/{c.specialist['id']}/postings"
    r = await client.post(
        path,
        json={"host_institution_id": c.township["id"], "kind": "rotating", "weekdays": ["tue"], **SPRING},
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/posting-physician-rotating")
    assert r.json()["title_zh"] and r.json()["title_en"]
    stationed = {
        "host_institution_id": c.township["id"],
        "start_date": "2026-03-01",
        "end_date": "2026-09-01",
    }
    r = await client.post(path, json=stationed)  # a body as clients sent it before: a physician, stationed
    assert r.status_code == 201
    assert [(p["kind"], p["role"], p["weekdays"]) for p in r.json()["postings"]] == [
        ("resident", "physician", [])
    ]


async def test_professions_and_titles_go_together(client: AsyncClient) -> None:
    c = await build_county(client)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "attending"}, "title-profession"),
        ({"general_practitioner": True}, "gp-not-physician"),
        ({"profession": "midwife"}, "validation-error"),
    ]
    for extra, code in cases:
        r = await client.post(
            "/v1/practitioners",
            json={
                "licence_no": "N9",
                "name": "x",
                "profession": "nurse",
                "title": "nurse",
                "institution_id": c.hospital["id"],
                **extra,
            },
        )
        assert r.status_code == 422 and r.json()["type"].endswith(f"/{code}"), (extra, r.text)
    n = await nurse(client, c)
    r = await client.patch(f"/v1/practitioners/{n['id']}", json={"version": n["version"], "title": "chief"})
    assert r.status_code == 422 and r.json()["type"].endswith("/title-profession")
    r = await client.patch(
        f"/v1/practitioners/{n['id']}", json={"version": n["version"], "title": "chief_nurse"}
    )
    assert r.status_code == 200 and r.json()["title"] == "chief_nurse"
