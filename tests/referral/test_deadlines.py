"""Response deadlines, escalation, expiry and automatic no-shows, driven by a controllable clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from httpx import AsyncClient

from services.referral.domain.rules import Policy
from services.referral.usecases.sweeps import SweepResult, sweep, sweep_once

from ..conftest import NOW
from .test_referral_flows import step, submit, upward
from .world import World


async def run_sweep(app: Any, at: Any) -> SweepResult:
    app.state.clock.at = at
    async with app.state.db.uow() as uow:
        result = await sweep(uow.session, at, Policy())
        await uow.commit()
    return result


async def test_missed_deadline_escalates_and_tops_the_inbox(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    routine = await submit(c, w, upward(w))
    urgent = await submit(c, w, upward(w, urgency="urgent"))
    emergency_later = await submit(c, w, upward(w, urgency="emergency"))
    office = w.token("referral_coordinator", "hospital1")
    order = [x["id"] for x in (await c.get("/v1/inbox", headers=office)).json()["items"]]
    assert order == [emergency_later["id"], urgent["id"], routine["id"]]
    assert await run_sweep(referral_app, NOW + timedelta(minutes=29)) == SweepResult()
    await step(c, emergency_later, "accept", office)
    result = await run_sweep(referral_app, NOW + timedelta(hours=4, minutes=1))  # urgent deadline passed
    assert result == SweepResult(escalated=1)
    inbox = (await c.get("/v1/inbox", params={"status": "submitted"}, headers=office)).json()["items"]
    assert [x["id"] for x in inbox] == [urgent["id"], routine["id"]] and inbox[0]["escalated_at"] is not None
    assert (await run_sweep(referral_app, NOW + timedelta(hours=5))).escalated == 0  # escalated once
    assert (await run_sweep(referral_app, NOW + timedelta(hours=49))).escalated == 1  # routine: 48 h
    timeline = (await c.get(f"/v1/referrals/{urgent['id']}/timeline", headers=office)).json()
    assert [t["action"] for t in timeline] == ["submitted", "escalate"] and timeline[1]["actor"] == "system"


async def test_unanswered_referral_expires(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))
    assert (await run_sweep(referral_app, NOW + timedelta(days=6, hours=23))).expired == 0
    assert (await run_sweep(referral_app, NOW + timedelta(days=7))).expired == 1
    got = (
        await c.get(f"/v1/referrals/{ref['id']}", headers=w.token("village_doctor", "village1", "vdoc1"))
    ).json()
    assert got["status"] == "expired"
    await step(c, got, "accept", w.token("referral_coordinator", "hospital1"), 409)


async def test_no_arrival_becomes_no_show(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    ref = await step(c, await submit(c, w, upward(w)), "accept", office)
    past = await step(c, ref, "schedule", office, 422, appointment_at="2026-02-28T01:00:00Z")
    assert past["type"].endswith("appointment-in-past")
    ref = await step(c, ref, "schedule", office, appointment_at="2026-03-02T01:00:00Z")
    assert (await run_sweep(referral_app, NOW + timedelta(days=7))).no_shows == 0
    assert (await run_sweep(referral_app, NOW + timedelta(days=8))).no_shows == 1
    got = (await c.get(f"/v1/referrals/{ref['id']}", headers=office)).json()
    assert got["status"] == "no_show"


async def test_a_backlog_is_swept_in_bounded_transactions(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    """After downtime the sweep works off what is due a batch at a time; the background loop goes on until
    nothing is left (sweep_once/has_more), so no single transaction holds every due row."""
    c, w = referral_client, world
    for _ in range(3):
        await submit(c, w, upward(w))
    at = NOW + timedelta(days=8)
    referral_app.state.clock.at = at
    async with referral_app.state.db.uow() as uow:
        first = await sweep(uow.session, at, Policy(), limit=2)
        await uow.commit()
    assert first.expired == 2 and first.has_more(2)
    db, slots = referral_app.state.db, referral_app.state.slot_policy
    rest = await sweep_once(db, at, Policy(), slots)
    assert rest.expired == 1 and not rest.has_more(500)
    assert (await sweep_once(db, at, Policy(), slots)).expired == 0
