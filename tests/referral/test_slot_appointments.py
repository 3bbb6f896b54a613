"""A referral's appointment follows its booking, over HTTP on the real database: a cancelled booking (by
the referral office or the resident) or a stopped session with nowhere to move puts the referral back to
accepted with no appointment, so the no-show sweep records nothing; a rebooking (the stopped session's
automatic one, a confirmed waitlist offer, the referral office booking another session) moves the
appointment. Each change is on the timeline and notified."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.usecases.common import MESSAGES

from .test_deadlines import run_sweep
from .test_referral_flows import step, submit, upward
from .test_slots import book, publish
from .world import World


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def accepted_referral(c: AsyncClient, w: World) -> dict[str, Any]:
    return await step(
        c, await submit(c, w, upward(w)), "accept", w.token("referral_coordinator", "hospital1")
    )


async def referral(c: AsyncClient, w: World, ref: dict[str, Any]) -> dict[str, Any]:
    got = await c.get(f"/v1/referrals/{ref['id']}", headers=w.token("referral_coordinator", "hospital1"))
    assert got.status_code == 200, got.text
    data: dict[str, Any] = got.json()
    return data


async def timeline(c: AsyncClient, w: World, ref: dict[str, Any]) -> list[dict[str, Any]]:
    got = await c.get(f"/v1/referrals/{ref['id']}/timeline", headers=w.token("village_doctor", "village1"))
    assert got.status_code == 200, got.text
    data: list[dict[str, Any]] = got.json()
    return data


@pytest.mark.parametrize("canceller", ["referral_office", "resident"])
async def test_a_cancelled_booking_puts_the_referral_back_to_accepted_and_no_no_show_follows(
    referral_client: AsyncClient, world: World, referral_app: Any, canceller: str
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s = await publish(c, w, capacity=10)  # three days ahead
    booking = await book(c, office, s, w.ids["resident1"], ref["id"])
    assert (await referral(c, w, ref))["status"] == "scheduled"
    who = office if canceller == "referral_office" else w.token("resident", resident="resident1")
    cancelled = await c.post(f"/v1/bookings/{booking['id']}/cancel", headers=who)
    assert cancelled.status_code == 200, cancelled.text
    got = await referral(c, w, ref)
    assert got["status"] == "accepted" and got["appointment_at"] is None
    last = (await timeline(c, w, ref))[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("unschedule", "scheduled", "accepted")
    assert last["detail"]["cause"] == "booking_cancelled" and last["detail"]["booking_id"] == booking["id"]
    assert at(last["detail"]["previous_appointment_at"]) == at(s["starts_at"])
    notes = (await c.get(f"/v1/referrals/{ref['id']}/notifications", headers=office)).json()
    told = {n["recipient_kind"] for n in notes if n["message_en"] == MESSAGES["unschedule"][1]}
    assert told == {"referrer", "resident", "receiver"}  # the hospital must book again
    result = await run_sweep(referral_app, at(s["starts_at"]) + timedelta(days=8))
    assert result.no_shows == 0 and (await referral(c, w, ref))["status"] == "accepted"


async def test_a_referral_cancelled_booking_can_be_booked_again(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s1 = await publish(c, w, capacity=10)
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=5))
    first = await book(c, office, s1, w.ids["resident1"], ref["id"])
    assert (await c.post(f"/v1/bookings/{first['id']}/cancel", headers=office)).status_code == 200
    await book(c, office, s2, w.ids["resident1"], ref["id"])
    got = await referral(c, w, ref)
    assert got["status"] == "scheduled" and at(got["appointment_at"]) == at(s2["starts_at"])


async def test_a_stopped_session_moves_the_appointment_with_the_rebooking(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s1 = await publish(c, w, capacity=10)
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=4))
    await book(c, office, s1, w.ids["resident1"], ref["id"])
    stopped = await c.post(f"/v1/sessions/{s1['id']}/cancel", headers=w.token("his_system", "hospital1"))
    assert stopped.status_code == 200, stopped.text
    got = await referral(c, w, ref)
    assert got["status"] == "scheduled" and at(got["appointment_at"]) == at(s2["starts_at"])
    last = (await timeline(c, w, ref))[-1]
    assert (last["action"], last["to_status"], last["role"]) == ("reschedule", "scheduled", "his_system")
    assert last["detail"]["cause"] == "session_cancelled" and last["detail"]["session_id"] == s2["id"]
    notes = (await c.get(f"/v1/referrals/{ref['id']}/notifications", headers=office)).json()
    assert {n["recipient_kind"] for n in notes if n["message_en"] == MESSAGES["reschedule"][1]} == {
        "referrer",
        "resident",
    }
    # a week after the stopped session is no no-show; a week after the new one, without arrival, is
    assert (await run_sweep(referral_app, at(s1["starts_at"]) + timedelta(days=7, hours=1))).no_shows == 0
    assert (await run_sweep(referral_app, at(s2["starts_at"]) + timedelta(days=7, hours=1))).no_shows == 1


async def test_a_stopped_session_with_nowhere_to_go_unschedules_and_the_waitlist_offer_schedules(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s1 = await publish(c, w, capacity=10)
    await book(c, office, s1, w.ids["resident1"], ref["id"])
    stopped = await c.post(f"/v1/sessions/{s1['id']}/cancel", headers=w.token("his_system", "hospital1"))
    assert stopped.status_code == 200, stopped.text
    got = await referral(c, w, ref)
    assert got["status"] == "accepted" and got["appointment_at"] is None
    assert (await timeline(c, w, ref))[-1]["detail"]["cause"] == "session_cancelled"
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=6))  # the waitlist is offered a hold
    async with referral_engine.connect() as conn:
        hold_id = await conn.scalar(
            sa.text("SELECT hold_id::text FROM slots WHERE session_id = :s AND hold_referral_id = :r"),
            {"s": s2["id"], "r": ref["id"]},
        )
    assert hold_id is not None
    confirmed = await c.post(f"/v1/holds/{hold_id}/confirm", headers=office)
    assert confirmed.status_code == 201, confirmed.text
    got = await referral(c, w, ref)
    assert got["status"] == "scheduled" and at(got["appointment_at"]) == at(s2["starts_at"])
    assert (await run_sweep(referral_app, at(s1["starts_at"]) + timedelta(days=8))).no_shows == 0


async def test_the_referral_office_rebooking_moves_the_appointment(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s1 = await publish(c, w, capacity=10)
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=5))
    first = await book(c, office, s1, w.ids["resident1"], ref["id"])
    second = await book(c, office, s2, w.ids["resident1"], ref["id"])
    got = await referral(c, w, ref)
    assert got["status"] == "scheduled" and at(got["appointment_at"]) == at(s2["starts_at"])
    last = (await timeline(c, w, ref))[-1]
    assert (last["action"], last["detail"]["cause"], last["detail"]["booking_id"]) == (
        "reschedule",
        "rebooked",
        second["id"],
    )
    assert at(last["detail"]["previous_appointment_at"]) == at(s1["starts_at"])
    mine = (await c.get("/v1/bookings", headers=office)).json()["items"]
    assert {b["id"]: b["status"] for b in mine} == {first["id"]: "cancelled", second["id"]: "booked"}
    found = (
        await c.get("/v1/sessions", params={"institution_id": w.ids["hospital1"]}, headers=office)
    ).json()["items"]
    assert [x["free"] for x in found] == [
        {"priority": 1, "family_doctor": 3, "public": 6},  # the first slot went back to its pool
        {"family_doctor": 3, "public": 6},
    ]
    assert (await run_sweep(referral_app, at(s1["starts_at"]) + timedelta(days=8))).no_shows == 0


async def test_a_booked_referral_is_not_scheduled_by_hand(referral_client: AsyncClient, world: World) -> None:
    """The appointment is the booking's while there is one: the referral office moves or cancels the
    booking; once the booking is cancelled, scheduling by hand is possible again."""
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s = await publish(c, w, capacity=10)
    booking = await book(c, office, s, w.ids["resident1"], ref["id"])
    scheduled = await referral(c, w, ref)

    refused = await step(c, scheduled, "schedule", office, 409, appointment_at="2026-03-09T01:00:00Z")

    assert refused["type"].endswith("appointment-booked") and refused["title_zh"] and refused["title_en"]
    got = await referral(c, w, ref)
    assert (got["version"], at(got["appointment_at"])) == (scheduled["version"], at(s["starts_at"]))
    assert (await c.post(f"/v1/bookings/{booking['id']}/cancel", headers=office)).status_code == 200
    by_hand = await step(
        c, await referral(c, w, ref), "schedule", office, appointment_at="2026-03-09T01:00:00Z"
    )
    assert by_hand["status"] == "scheduled" and at(by_hand["appointment_at"]) == at("2026-03-09T01:00:00Z")


async def test_the_sender_cancelling_a_scheduled_referral_gives_its_slot_back(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    """The booking is cancelled in the same transaction, its (priority) slot goes back to its pool and is
    offered to the next priority referral waiting — here another resident's."""
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await accepted_referral(c, w)
    s = await publish(c, w, capacity=1)  # a single slot, in the priority pool
    booking = await book(c, office, s, w.ids["resident1"], ref["id"])
    assert booking["pool"] == "priority"
    other = upward(
        w, resident_id=w.ids["resident2"], from_institution_id=w.ids["village2"], scope="inter_community"
    )
    other = await step(
        c, await submit(c, w, other, w.token("village_doctor", "village2", "vdoc2")), "accept", office
    )
    wanted = {"institution_id": w.ids["hospital1"], "department_code": "XNK", "resource_type": "specialist"}
    waiting = await c.post(
        "/v1/waitlist",
        json={**wanted, "resident_id": w.ids["resident2"], "referral_id": other["id"]},
        headers=office,
    )
    assert waiting.status_code == 201, waiting.text

    sender = w.token("village_doctor", "village1", "vdoc1")
    cancelled = await step(c, await referral(c, w, ref), "cancel", sender, reason="患者改去省级医院")

    assert cancelled["status"] == "cancelled"
    mine = (await c.get("/v1/bookings", headers=office)).json()["items"]
    assert {b["id"]: b["status"] for b in mine} == {booking["id"]: "cancelled"}
    last = (await timeline(c, w, ref))[-1]
    assert (last["action"], last["detail"]["bookings_cancelled"]) == ("cancel", [booking["id"]])
    offered = (await c.get(f"/v1/waitlist/{waiting.json()['id']}", headers=office)).json()
    assert offered["status"] == "offered" and offered["offered_slot_id"] == booking["slot_id"]
    async with referral_engine.connect() as conn:
        slot = (
            await conn.execute(
                sa.text("SELECT status, hold_referral_id::text FROM slots WHERE id = :i"),
                {"i": booking["slot_id"]},
            )
        ).one()
    assert tuple(slot) == ("held", other["id"])
