"""Two-way referrals end to end over HTTP on the real database, with the read model built from real
registry events."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ..conftest import NOW
from .world import World


def upward(w: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "direction": "up",
        "resident_id": w.ids["resident1"],
        "from_institution_id": w.ids["village1"],
        "to_institution_id": w.ids["hospital1"],
        "to_department_code": "XNK",
        "diagnosis_icd10": "I20.0",
        "reason": "反复胸痛，需心内科评估",
        "urgency": "routine",
        "clinical_summary": "68岁，高血压病史十年。",
        "result_refs": ["lab:HbA1c/2026-02-20"],
    }
    body.update(overrides)
    return body


def downward(w: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "direction": "down",
        "resident_id": w.ids["resident1"],
        "from_institution_id": w.ids["hospital1"],
        "to_institution_id": w.ids["township1"],
        "diagnosis_icd10": "I25.1",
        "reason": "PCI术后，转回基层康复",
        "clinical_summary": "PCI术后第五天，病情稳定",
        "downward_reason": "post_operative",
        "follow_up": {"interval_days": 7, "visits": 2},
    }
    body.update(overrides)
    return body


async def submit(
    c: AsyncClient, w: World, body: dict[str, Any], who: dict[str, str] | None = None, status: int = 201
) -> dict[str, Any]:
    r = await c.post(
        "/v1/referrals", json=body, headers=who or w.token("village_doctor", "village1", "vdoc1")
    )
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def step(
    c: AsyncClient, ref: dict[str, Any], action: str, who: dict[str, str], status: int = 200, **body: Any
) -> dict[str, Any]:
    r = await c.post(
        f"/v1/referrals/{ref['id']}/{action}", json={"version": ref["version"], **body}, headers=who
    )
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


async def test_upward_referral_accepted_scheduled_arrived_completed(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))
    assert ref["status"] == "submitted" and ref["scope"] == "intra_community"
    assert ref["priority"] is True  # sent by a member of the resident's contracted team
    assert ref["response_due_at"] == "2026-03-03T02:00:00Z"  # routine: 48 h
    office = w.token("referral_coordinator", "hospital1")
    ref = await step(c, ref, "accept", office, note="安排心内科门诊")
    ref = await step(c, ref, "schedule", office, appointment_at="2026-03-04T01:30:00Z")
    ref = await step(c, ref, "arrive", office)
    ref = await step(
        c,
        ref,
        "complete",
        office,
        outcome="冠心病，已介入治疗",
        discharge_summary="出院小结：病情稳定，下转随访。",
    )
    assert ref["status"] == "completed"
    sender = w.token("village_doctor", "village1", "vdoc1")
    seen = (await c.get(f"/v1/referrals/{ref['id']}", headers=sender)).json()
    assert seen["discharge_summary"].startswith("出院小结") and seen["outcome"] == "冠心病，已介入治疗"
    timeline = (await c.get(f"/v1/referrals/{ref['id']}/timeline", headers=sender)).json()
    assert [(t["action"], t["to_status"]) for t in timeline] == [
        ("submitted", "submitted"),
        ("accept", "accepted"),
        ("schedule", "scheduled"),
        ("arrive", "arrived"),
        ("complete", "completed"),
    ]
    assert (
        timeline[1]["role"] == "referral_coordinator" and timeline[1]["institution_id"] == w.ids["hospital1"]
    )
    notes = (await c.get(f"/v1/referrals/{ref['id']}/notifications", headers=sender)).json()
    assert {n["recipient_kind"] for n in notes} >= {"referrer", "resident"}
    assert sum(n["recipient_kind"] == "resident" for n in notes) == 5
    outbox = (await c.get("/v1/outbox", headers=sender)).json()
    assert [x["id"] for x in outbox["items"]] == [ref["id"]]


async def test_unreferred_team_member_is_not_priority(referral_client: AsyncClient, world: World) -> None:
    ref = await submit(
        referral_client, world, upward(world), world.token("village_doctor", "village1", "vdoc1b")
    )
    assert ref["priority"] is False
    no_contract = await submit(referral_client, world, upward(world, resident_id=world.ids["resident3"]))
    assert no_contract["priority"] is False


async def test_downward_referral_with_follow_ups(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine, referral_app: Any
) -> None:
    c, w = referral_client, world
    body = downward(w, follow_up={"interval_days": 7, "visits": 3})
    ref = await submit(c, w, body, w.token("specialist", "hospital1", "spec1"))
    assert ref["direction"] == "down" and ref["priority"] is False
    township = w.token("family_doctor", "township1", "gp1")
    visits = (await c.get(f"/v1/referrals/{ref['id']}/follow-ups", headers=township)).json()
    assert [v["due_date"] for v in visits] == ["2026-03-08", "2026-03-15", "2026-03-22"]
    assert {v["owner_team_id"] for v in visits} == {w.ids["team1"]}  # the resident's contracted team
    ref = await step(c, ref, "accept", township)
    ref = await step(c, ref, "arrive", township)
    done = await c.post(
        f"/v1/follow-ups/{visits[0]['id']}/done", json={"note": "血压 130/80，伤口愈合良好"}, headers=township
    )
    assert done.status_code == 200 and done.json()["done_by"] == "family_doctor@township1"
    again = await c.post(f"/v1/follow-ups/{visits[0]['id']}/done", json={"note": "x"}, headers=township)
    assert again.status_code == 409
    stranger = await c.post(
        f"/v1/follow-ups/{visits[1]['id']}/done",
        json={"note": "x"},
        headers=w.token("family_doctor", "township2", "gp2"),
    )
    assert stranger.status_code == 403
    referral_app.state.clock.at = NOW + timedelta(days=20)  # visit 2 due 15 March + 3 days grace passed
    from services.referral.domain.rules import Policy
    from services.referral.usecases.sweeps import sweep

    async with referral_app.state.db.uow() as uow:
        result = await sweep(uow.session, referral_app.state.clock.now(), Policy())
        await uow.commit()
    assert result.missed_visits == 1
    visits = (await c.get(f"/v1/referrals/{ref['id']}/follow-ups", headers=township)).json()
    assert [v["missed_at"] is not None for v in visits] == [False, True, False]
    timeline = (await c.get(f"/v1/referrals/{ref['id']}/timeline", headers=township)).json()
    assert [t["action"] for t in timeline] == [
        "submitted",
        "accept",
        "arrive",
        "follow_up_visit",
        "follow_up_missed",
    ]


async def test_bad_referrals_write_nothing(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    cases: list[tuple[dict[str, Any], int, str]] = [
        (upward(w, resident_id="00000000-0000-0000-0000-000000000000"), 422, "unknown-reference"),
        (upward(w, to_institution_id="00000000-0000-0000-0000-000000000000"), 422, "unknown-reference"),
        (upward(w, to_institution_id=w.ids["village1"], to_department_code=None), 422, "wrong-tier"),
        (upward(w, to_department_code="ORTHO"), 422, "unknown-department"),
        (upward(w, resident_id=w.ids["resident2"]), 422, "scope-mismatch"),  # another community's resident
        (upward(w, diagnosis_icd10="I10"), 422, "grassroots-reason-required"),
        (upward(w, diagnosis_icd10="not-icd"), 422, "validation-error"),
        (upward(w, urgency="whenever"), 422, "validation-error"),
        (upward(w, clinical_summary=""), 422, "validation-error"),
        (
            upward(
                w,
                to_institution_id=None,
                destination_name="省人民医院",
                scope="out_of_county",
                diagnosis_icd10="C34.9",
            ),
            422,
            "out-of-county-reason-required",
        ),
        (upward(w, direction="down"), 403, "forbidden"),  # a village doctor cannot refer down
    ]
    for body, status, slug in cases:
        r = await c.post("/v1/referrals", json=body, headers=w.token("village_doctor", "village1", "vdoc1"))
        assert r.status_code == status, (body, r.text)
        assert r.json()["type"].endswith(slug) and r.json()["title_zh"], r.json()
    other_clinic = await c.post(
        "/v1/referrals", json=upward(w), headers=w.token("village_doctor", "village2", "vdoc2")
    )
    assert other_clinic.status_code == 403
    assert (await c.post("/v1/referrals", json=upward(w))).status_code == 401
    assert await count(referral_engine, "referrals") == 0
    assert await count(referral_engine, "outbox") == 0


async def test_grassroots_disease_with_reason_and_between_communities(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w, diagnosis_icd10="I10", grassroots_reason="exceeds_capacity"))
    assert ref["grassroots_reason"] == "exceeds_capacity"
    # a resident of community 2 referred by the community 1 clinic: allowed through the between-communities flow
    inter = await submit(c, w, upward(w, resident_id=w.ids["resident2"], scope="inter_community"))
    assert inter["scope"] == "inter_community"
    cross = await submit(
        c,
        w,
        upward(w, to_institution_id=w.ids["hospital2"], to_department_code="NEI", scope="inter_community"),
    )
    assert cross["to_community_id"] == w.ids["community2"]


async def test_illegal_transitions_and_wrong_actors(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))
    office = w.token("referral_coordinator", "hospital1")
    problem = await step(c, ref, "complete", office, 409, outcome="x", discharge_summary="y")
    assert problem["type"].endswith("illegal-transition")
    other = await step(c, ref, "accept", w.token("referral_coordinator", "hospital2"), 404)
    assert other["status"] == 404  # another hospital cannot even see it
    sender_accepting = await step(c, ref, "accept", w.token("village_doctor", "village1", "vdoc1"), 403)
    assert sender_accepting["type"].endswith("not-your-referral-step")
    stale = await step(c, {**ref, "version": 99}, "accept", office, 409)
    assert stale["type"].endswith("stale-version")
    ref = await step(c, ref, "accept", office)
    await step(c, ref, "no-show", office, 409)  # only a scheduled referral can be a no-show
    cancelled = await step(
        c, ref, "cancel", w.token("village_doctor", "village1", "vdoc1"), reason="患者改去他院"
    )
    assert cancelled["status"] == "cancelled"
    await step(c, cancelled, "arrive", office, 409)


async def test_two_coordinators_at_once_only_one_wins(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))
    a, b = (
        w.token("referral_coordinator", "hospital1", subject="a"),
        w.token("referral_coordinator", "hospital1", subject="b"),
    )
    results = await asyncio.gather(
        c.post(f"/v1/referrals/{ref['id']}/accept", json={"version": ref["version"]}, headers=a),
        c.post(
            f"/v1/referrals/{ref['id']}/reject",
            json={"version": ref["version"], "code": "no_capacity"},
            headers=b,
        ),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    timeline = (await c.get(f"/v1/referrals/{ref['id']}/timeline", headers=a)).json()
    assert len(timeline) == 2


async def test_forward_return_and_re_request(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await submit(c, w, upward(w))
    fwd = await step(
        c,
        ref,
        "forward",
        office,
        to_institution_id=w.ids["hospital1"],
        to_department_code="NEI",
        note="胸痛首诊内科",
    )
    assert fwd["id"] == ref["id"] and fwd["to_department_code"] == "NEI" and fwd["status"] == "submitted"
    returned = await step(c, fwd, "return", office, advice="建议基层调整降压药后复查，无需转诊")
    assert returned["status"] == "returned" and returned["answer_note"].startswith("建议")
    other = await submit(c, w, upward(w))
    rejected = await step(c, other, "reject", office, code="incomplete_information", note="缺心电图")
    again = await submit(c, w, upward(w, replaces_referral_id=rejected["id"], result_refs=["ecg:2026-03-01"]))
    old = (await c.get(f"/v1/referrals/{rejected['id']}", headers=office)).json()
    assert old["status"] == "revoked" and again["replaces_referral_id"] == rejected["id"]
    open_ones = (
        await c.get(
            "/v1/referrals", params={"resident_id": w.ids["resident1"], "open_only": True}, headers=office
        )
    ).json()
    assert [x["id"] for x in open_ones["items"]] == [again["id"]]


async def test_out_of_county_needs_lead_hospital_approval(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    body = upward(
        w,
        to_institution_id=None,
        to_department_code=None,
        destination_name="郑州大学第一附属医院",
        scope="out_of_county",
        diagnosis_icd10="C34.9",
        out_of_county_reason="需胸外科达芬奇手术，县内无条件",
    )
    ref = await submit(c, w, body)
    assert ref["status"] == "pending_approval" and ref["approver_institution_id"] == w.ids["hospital1"]
    lead = w.token("referral_coordinator", "hospital1")
    pending = (await c.get("/v1/approvals", headers=lead)).json()
    assert [x["id"] for x in pending["items"]] == [ref["id"]]
    await step(c, ref, "approve", w.token("referral_coordinator", "hospital2"), 404)
    approved = await step(c, ref, "approve", lead, note="同意")
    assert approved["status"] == "submitted" and approved["submitted_at"] is not None
    emergency = await submit(c, w, {**body, "urgency": "emergency"})
    assert emergency["status"] == "submitted" and emergency["emergency_review_pending"] is True
    reviewed = await step(c, emergency, "review", lead, note="事后审核通过")
    assert reviewed["emergency_review_pending"] is False
    await step(c, reviewed, "review", lead, 409)


async def test_resident_and_other_communities_see_only_their_own(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    mine = await submit(c, w, upward(w))
    theirs = await submit(
        c,
        w,
        upward(
            w,
            resident_id=w.ids["resident2"],
            from_institution_id=w.ids["village2"],
            to_institution_id=w.ids["hospital2"],
            to_department_code="NEI",
        ),
        w.token("village_doctor", "village2", "vdoc2"),
    )
    resident = w.token("resident", resident="resident1")
    history = (await c.get(f"/v1/residents/{w.ids['resident1']}/referrals", headers=resident)).json()
    assert [x["id"] for x in history["items"]] == [mine["id"]]
    assert (await c.get(f"/v1/referrals/{theirs['id']}", headers=resident)).status_code == 404
    peek = await c.get(f"/v1/residents/{w.ids['resident2']}/referrals", headers=resident)
    assert peek.json()["total"] == 0
    clinic2 = w.token("village_doctor", "village2", "vdoc2")
    assert (await c.get(f"/v1/referrals/{mine['id']}", headers=clinic2)).status_code == 404
    assert (await c.get(f"/v1/referrals/{mine['id']}/timeline", headers=clinic2)).status_code == 404
    everything = (await c.get("/v1/referrals", headers=clinic2)).json()
    assert [x["id"] for x in everything["items"]] == [theirs["id"]]
    admin = (await c.get("/v1/referrals", headers=w.token("commission_admin"))).json()
    assert admin["total"] == 2


async def test_idempotent_submission(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    headers = {**w.token("village_doctor", "village1", "vdoc1"), "Idempotency-Key": "vdoc1-2026-03-01-001"}
    first = await c.post("/v1/referrals", json=upward(w), headers=headers)
    second = await c.post("/v1/referrals", json=upward(w), headers=headers)
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
    assert await count(referral_engine, "referrals") == 1
