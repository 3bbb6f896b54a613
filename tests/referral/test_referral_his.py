"""A hospital's HIS acts on the referrals addressed to its hospital (issue #14, point 4): it takes the
receiving side's steps, for a practitioner of its own hospital whom it names (a physician for accepting,
returning with advice and completing with the discharge summary), and the timeline records both the
machine client and that practitioner. A village doctor is the receiving side only at a village clinic."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.referral.models import RmInstitution

from ..factories import ReferralRows
from .test_referral_flows import downward, step, submit, upward
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
    body = downward(w, follow_up={"interval_days": 7, "visits": 1})
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


async def nurse_at_hospital1(referral_engine: AsyncEngine, w: World) -> str:
    """A nurse of hospital 1 in the referral read model, as the registry's practitioner event (v3, with
    its profession) leaves her (that mapping: tests/registry/test_postings.py). Written directly because
    registry tests earlier in a full run may have emptied the registry the world was built in."""
    async with AsyncSession(referral_engine, expire_on_commit=False) as s:
        hospital = await s.get(RmInstitution, uuid.UUID(w.ids["hospital1"]))
        assert hospital is not None
        nurse = await ReferralRows(s).practitioner(hospital, title="nurse_in_charge", profession="nurse")
        await s.commit()
    return str(nurse.id)


async def test_a_nurse_named_by_the_his_neither_accepts_nor_completes(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    nurse = await nurse_at_hospital1(referral_engine, w)
    ref = await submit(c, w, upward(w))

    not_hers = await step(c, ref, "accept", his(w), 422, acting_practitioner_id=nurse)

    assert not_hers["type"].endswith("acting-practitioner-not-physician") and not_hers["title_zh"]
    ref = await step(c, ref, "accept", his(w), acting_practitioner_id=w.ids["spec1"])
    ref = await step(c, ref, "arrive", his(w), acting_practitioner_id=nurse)  # the front desk may
    summary: dict[str, Any] = {"outcome": "稳定型心绞痛", "discharge_summary": "出院小结"}
    refused = await step(c, ref, "complete", his(w), 422, acting_practitioner_id=nurse, **summary)
    assert refused["type"].endswith("acting-practitioner-not-physician")
    done = await step(c, ref, "complete", his(w), 200, acting_practitioner_id=w.ids["spec1"], **summary)
    assert done["status"] == "completed"
    assert [t["detail"]["acting_practitioner_id"] for t in (await timeline(c, w, ref))[1:]] == [
        w.ids["spec1"],
        nurse,
        w.ids["spec1"],
    ]


async def test_a_village_doctor_is_not_the_receiving_side_of_a_referral_to_a_hospital(
    referral_client: AsyncClient, world: World
) -> None:
    """Credentials naming a village doctor at the county hospital (a misissued token, a doctor posted
    there) do not make them the hospital's receiving side."""
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))

    problem = await step(c, ref, "accept", w.token("village_doctor", "hospital1", "vdoc1"), 403)

    assert problem["type"].endswith("not-your-referral-step")
    assert (await step(c, ref, "accept", w.token("specialist", "hospital1", "spec1")))["status"] == "accepted"
