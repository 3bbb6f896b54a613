"""The referral deadlines are the county's (issue #14, point 5): the commission changes its county's
response deadline, expiry, no-show and follow-up grace periods; new referrals of that county and the
sweeps follow them, while another county keeps the deployment's defaults.

County A is a county of this test alone (its rules stay recorded for the rest of the session); county B
is the world's county, which records nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.usecases.sweeps import SweepResult

from ..conftest import NOW
from ..integration.county import COUNTY
from .test_deadlines import run_sweep
from .test_referral_flows import downward, step, submit, upward
from .world import World, other_county

A = "411082"
RULES_A = {
    "routine_response_hours": 24,
    "expire_after_days": 2,
    "no_show_after_days": 1,
    "follow_up_grace_days": 0,
}


def in_a(w: World, **overrides: Any) -> dict[str, Any]:
    return upward(
        w,
        resident_id=w.ids[f"resident@{A}"],
        from_institution_id=w.ids[f"village@{A}"],
        to_institution_id=w.ids[f"hospital@{A}"],
        to_department_code="NEI",
        **overrides,
    )


def home(w: World, county: str | None) -> dict[str, Any]:
    """Downward with one follow-up visit a day later (due 2 March), owned by the county's township team."""

    def at(key: str) -> str:
        return f"{key}@{county}" if county else f"{key}1"

    return downward(
        w,
        resident_id=w.ids[at("resident")],
        from_institution_id=w.ids[at("hospital")],
        to_institution_id=w.ids[at("township")],
        follow_up={"interval_days": 1, "visits": 1, "owner_team_id": w.ids[at("team")]},
    )


async def test_a_countys_deadlines_are_its_own(
    referral_client: AsyncClient,
    world: World,
    registry_app: Any,
    referral_engine: AsyncEngine,
    referral_app: Any,
) -> None:
    c, w = referral_client, world
    await other_county(registry_app, referral_engine, w, A)
    changed = await c.put(
        f"/v1/counties/{A}/referral-settings",
        json={"changes": RULES_A, "reason": "县卫健委：缩短普通转诊答复时限"},
        headers=w.token("commission_admin"),
    )
    assert changed.status_code == 200, changed.text
    clinic_a = w.token("village_doctor", f"village@{A}", f"vdoc@{A}")
    office_a, office_b = (
        w.token("referral_coordinator", f"hospital@{A}"),
        w.token("referral_coordinator", "hospital1"),
    )

    answer_a, answer_b = await submit(c, w, in_a(w), clinic_a), await submit(c, w, upward(w))

    assert (answer_a["county_code"], answer_a["response_due_at"]) == (A, "2026-03-02T02:00:00Z")  # 24 h
    assert (answer_b["county_code"], answer_b["response_due_at"]) == (COUNTY, "2026-03-03T02:00:00Z")  # 48 h

    referral_app.state.clock.at = NOW + timedelta(hours=1)  # forwarding sets a new deadline, by A's rules
    forwarded = await step(
        c,
        await submit(c, w, in_a(w), clinic_a),
        "forward",
        office_a,
        to_institution_id=w.ids[f"hospital@{A}"],
    )
    assert forwarded["response_due_at"] == "2026-03-02T03:00:00Z"
    referral_app.state.clock.at = NOW

    appointment = (NOW + timedelta(hours=1)).isoformat()
    visit_a = await submit(c, w, in_a(w), clinic_a)
    visit_a = await step(
        c, await step(c, visit_a, "accept", office_a), "schedule", office_a, appointment_at=appointment
    )
    visit_b = await step(
        c,
        await step(c, await submit(c, w, upward(w)), "accept", office_b),
        "schedule",
        office_b,
        appointment_at=appointment,
    )
    for county, sender, receiver in (
        (
            A,
            w.token("specialist", f"hospital@{A}", f"spec@{A}"),
            w.token("family_doctor", f"township@{A}", f"gp@{A}"),
        ),
        (None, w.token("specialist", "hospital1", "spec1"), w.token("family_doctor", "township1", "gp1")),
    ):
        down = await submit(c, w, home(w, county), sender)
        await step(c, await step(c, down, "accept", receiver), "arrive", receiver)

    # day 2, 04:00 Z: A's 24-h answers are overdue (B's 48 h are not); A's visit no-show after 1 day
    first = await run_sweep(referral_app, NOW + timedelta(hours=26))
    assert first == SweepResult(escalated=2, no_shows=1)  # A's unanswered one and A's forwarded one
    # 3 March: A's unanswered referrals expire after 2 days; A's visit due 2 March is missed with no grace;
    # B's routine referral reaches its 48-h deadline
    second = await run_sweep(referral_app, NOW + timedelta(days=2, hours=2))
    assert second == SweepResult(escalated=1, expired=2, missed_visits=1)
    # 9 March: B's defaults catch up (7 days to expire and to a no-show, 3 days' grace)
    third = await run_sweep(referral_app, NOW + timedelta(days=8))
    assert third == SweepResult(expired=1, no_shows=1, missed_visits=1)

    read = w.token("commission_admin")
    statuses = {
        name: (await c.get(f"/v1/referrals/{ref['id']}", headers=read)).json()["status"]
        for name, ref in (
            ("answer_a", answer_a),
            ("answer_b", answer_b),
            ("visit_a", visit_a),
            ("visit_b", visit_b),
        )
    }
    assert statuses == {
        "answer_a": "expired",
        "answer_b": "expired",
        "visit_a": "no_show",
        "visit_b": "no_show",
    }
