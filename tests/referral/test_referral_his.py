"""A hospital's HIS acts on the referrals addressed to its hospital (issue #14, point 4): it takes the
receiving side's steps, for a practitioner of its own hospital whom it names, and the timeline records
both the machine client and that practitioner."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from .test_referral_flows import step, submit, upward
from .world import World


def his(w: World, hospital: str = "hospital1") -> dict[str, str]:
    return w.token("his_system", hospital, subject=f"client:his-{hospital}")


async def timeline(c: AsyncClient, w: World, ref: dict[str, Any]) -> list[dict[str, Any]]:
    r = await c.get(
        f"/v1/referrals/{ref['id']}/timeline", headers=w.token("referral_coordinator", "hospital1")
    )
    data: list[dict[str, Any]] = r.json()
    return data


async def test_the_his_accepts_schedules_and_completes_a_referral_to_its_hospital(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))
    spec = w.ids["spec1"]

    ref = await step(c, ref, "accept", his(w), acting_practitioner_id=spec, note="HIS接诊")
    ref = await step(
        c, ref, "schedule", his(w), acting_practitioner_id=spec, appointment_at="2026-03-04T01:30:00Z"
    )
    ref = await step(c, ref, "arrive", his(w), acting_practitioner_id=spec)
    ref = await step(
        c,
        ref,
        "complete",
        his(w),
        acting_practitioner_id=spec,
        outcome="稳定型心绞痛",
        discharge_summary="出院小结",
    )

    assert ref["status"] == "completed" and ref["outcome"] == "稳定型心绞痛"
    steps = (await timeline(c, w, ref))[1:]
    assert [t["action"] for t in steps] == ["accept", "schedule", "arrive", "complete"]
    for t in steps:
        assert (t["actor"], t["role"], t["institution_id"]) == (
            "client:his-hospital1",
            "his_system",
            w.ids["hospital1"],
        )
        assert t["detail"]["acting_practitioner_id"] == spec


async def test_the_his_rejects_forwards_returns_and_records_no_shows_too(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    spec = w.ids["spec1"]
    ref = await submit(c, w, upward(w))
    fwd = await step(
        c,
        ref,
        "forward",
        his(w),
        acting_practitioner_id=spec,
        to_institution_id=w.ids["hospital1"],
        to_department_code="NEI",
    )
    assert fwd["to_department_code"] == "NEI"
    returned = await step(c, fwd, "return", his(w), acting_practitioner_id=spec, advice="基层调整用药即可")
    assert returned["status"] == "returned"
    other = await submit(c, w, upward(w))
    rejected = await step(c, other, "reject", his(w), acting_practitioner_id=spec, code="no_capacity")
    assert rejected["status"] == "rejected"
    later = await step(c, await submit(c, w, upward(w)), "accept", his(w), acting_practitioner_id=spec)
    later = await step(
        c, later, "schedule", his(w), acting_practitioner_id=spec, appointment_at="2026-03-02T01:00:00Z"
    )
    no_show = await step(c, later, "no-show", his(w), acting_practitioner_id=spec)
    assert no_show["status"] == "no_show"


async def test_the_his_of_another_hospital_cannot_act_or_see(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))

    problem = await step(c, ref, "accept", his(w, "hospital2"), 404, acting_practitioner_id=w.ids["spec1"])

    assert problem["type"].endswith("not-found")
    assert (await c.get(f"/v1/referrals/{ref['id']}", headers=his(w, "hospital2"))).status_code == 404
    assert len(await timeline(c, w, ref)) == 1


async def test_the_his_is_not_the_sender_of_its_hospitals_referrals(
    referral_client: AsyncClient, world: World
) -> None:
    """A downward referral from hospital 1: its HIS reads it but is not the receiving side, and cannot
    cancel it (the sender's step is a person's)."""
    c, w = referral_client, world
    body = {
        "direction": "down",
        "resident_id": w.ids["resident1"],
        "from_institution_id": w.ids["hospital1"],
        "to_institution_id": w.ids["township1"],
        "diagnosis_icd10": "I25.1",
        "reason": "术后康复",
        "clinical_summary": "病情稳定",
        "downward_reason": "post_operative",
        "follow_up": {"interval_days": 7, "visits": 1},
    }
    down = await submit(c, w, body, w.token("specialist", "hospital1", "spec1"))
    for action, extra in (("accept", {}), ("cancel", {"reason": "x"})):
        problem = await step(c, down, action, his(w), 403, acting_practitioner_id=w.ids["spec1"], **extra)
        assert problem["type"].endswith("not-your-referral-step")


async def test_the_his_names_a_practitioner_of_its_own_hospital(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))

    missing = await step(c, ref, "accept", his(w), 422)
    elsewhere = await step(c, ref, "accept", his(w), 422, acting_practitioner_id=w.ids["gp1"])
    unknown = await step(
        c, ref, "accept", his(w), 422, acting_practitioner_id="00000000-0000-0000-0000-000000000000"
    )
    person = await step(
        c,
        ref,
        "accept",
        w.token("referral_coordinator", "hospital1"),
        422,
        acting_practitioner_id=w.ids["spec1"],
    )

    assert missing["type"].endswith("acting-practitioner-required") and missing["title_zh"]
    assert elsewhere["type"].endswith("acting-practitioner-elsewhere") and elsewhere["title_zh"]
    assert unknown["type"].endswith("unknown-reference")
    assert person["type"].endswith("acting-practitioner-not-allowed")
    got = (await c.get(f"/v1/referrals/{ref['id']}", headers=his(w))).json()
    assert (got["status"], got["version"]) == ("submitted", 1) and len(await timeline(c, w, ref)) == 1
