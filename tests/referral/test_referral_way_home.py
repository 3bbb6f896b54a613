"""The way home (issue #14, points 2 and 3): a downward referral names the upward referral it continues,
so the up-and-down episode is one chain (for billing's deductible) — one downward referral at a time,
a re-request replacing it staying in the episode; and a village clinic with a family-doctor team can
receive the patient for follow-up (seed 004 §十一 "至有条件的基层医疗卫生机构")."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.domain.rules import Policy
from services.referral.schemas import ReferralIn
from services.referral.usecases.referrals import submit_referral
from shared.contracts import decode
from shared.contracts.referral import ReferralV3
from shared.errors import Conflict
from shared.events import EventEnvelope
from shared.principal import Principal, Role

from .test_referral_flows import count, downward, step, submit, upward
from .test_slot_races import while_held
from .world import World, village_with_team

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def specialist(w: World) -> dict[str, str]:
    return w.token("specialist", "hospital1", "spec1")


async def arrived_upward(c: AsyncClient, w: World, **overrides: Any) -> dict[str, Any]:
    office = w.token("referral_coordinator", "hospital1")
    ref = await step(c, await submit(c, w, upward(w, **overrides)), "accept", office)
    return await step(c, ref, "arrive", office)


async def refused(c: AsyncClient, w: World, body: dict[str, Any], status: int, slug: str) -> None:
    r = await c.post("/v1/referrals", json=body, headers=specialist(w))
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["type"].endswith(slug) and problem["title_zh"] and problem["title"], problem


async def test_a_downward_referral_continues_the_upward_one_and_the_link_travels(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    up = await arrived_upward(c, w)

    down = await submit(c, w, downward(w, continues_referral_id=up["id"]), specialist(w))

    assert down["continues_referral_id"] == up["id"] and down["status"] == "submitted"
    seen = await c.get(f"/v1/referrals/{down['id']}", headers=w.token("family_doctor", "township1", "gp1"))
    assert seen.json()["continues_referral_id"] == up["id"]
    async with referral_engine.connect() as conn:
        payload = await conn.scalar(
            sa.text("SELECT payload FROM outbox WHERE key = :k AND payload->>'type' = 'referral.submitted'"),
            {"k": down["id"]},
        )
    data = decode(EventEnvelope.model_validate(payload))
    assert isinstance(data, ReferralV3) and str(data.continues_referral_id) == up["id"]
    # the upward referral, once completed, is still the episode a later downward referral continues (the
    # first way home having been declined by the township)
    office = w.token("referral_coordinator", "hospital1")
    done = await step(c, up, "complete", office, outcome="好转", discharge_summary="出院小结")
    await step(c, down, "reject", w.token("family_doctor", "township1", "gp1"), code="no_capacity")
    again = await submit(c, w, downward(w, continues_referral_id=done["id"]), specialist(w))
    assert again["continues_referral_id"] == up["id"]


async def test_a_link_that_is_not_the_same_episode_is_refused_and_writes_nothing(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    office = w.token("referral_coordinator", "hospital1")
    up = await arrived_upward(c, w)
    accepted_only = await step(c, await submit(c, w, upward(w)), "accept", office)
    other_resident = downward(w, resident_id=w.ids["resident3"], continues_referral_id=up["id"])
    referrals, outbox = await count(referral_engine, "referrals"), await count(referral_engine, "outbox")

    await refused(c, w, other_resident, 422, "continues-other-resident")
    await refused(c, w, downward(w, continues_referral_id=accepted_only["id"]), 409, "continues-not-arrived")
    await refused(c, w, downward(w, continues_referral_id=UNKNOWN), 422, "unknown-reference")
    up_again = upward(w, continues_referral_id=up["id"])  # an upward referral continues nothing
    r = await c.post("/v1/referrals", json=up_again, headers=w.token("village_doctor", "village1", "vdoc1"))
    assert r.status_code == 422 and r.json()["type"].endswith("continues-only-downward"), r.text
    # a re-request is not a link: replacing another institution's referral is still refused
    await refused(c, w, downward(w, replaces_referral_id=up["id"]), 422, "replaces-other")

    assert await count(referral_engine, "referrals") == referrals
    assert await count(referral_engine, "outbox") == outbox
    assert (await c.get(f"/v1/referrals/{up['id']}", headers=office)).json()["status"] == "arrived"


async def test_a_downward_referral_continues_an_upward_one_only(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    first_down = await submit(c, w, downward(w), specialist(w))
    township = w.token("family_doctor", "township1", "gp1")
    first_down = await step(c, await step(c, first_down, "accept", township), "arrive", township)

    await refused(c, w, downward(w, continues_referral_id=first_down["id"]), 422, "continues-not-upward")


async def test_an_upward_referral_another_hospital_received_is_unknown_to_this_one(
    referral_client: AsyncClient, world: World
) -> None:
    """The way home leaves from the hospital the patient went to; another hospital cannot even see the
    upward referral, so for it the link names nothing."""
    c, w = referral_client, world
    up = await arrived_upward(c, w)
    body = downward(
        w,
        from_institution_id=w.ids["hospital2"],
        scope="inter_community",
        continues_referral_id=up["id"],
    )
    r = await c.post("/v1/referrals", json=body, headers=w.token("referral_coordinator", "hospital2"))
    assert r.status_code == 422 and r.json()["type"].endswith("unknown-reference"), r.text


async def test_a_village_clinic_with_a_family_doctor_team_receives_a_downward_referral(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    clinic = await village_with_team(referral_engine, w)
    up = await arrived_upward(c, w)
    plan = {"interval_days": 14, "visits": 2, "owner_team_id": clinic["team"]}

    down = await submit(
        c,
        w,
        downward(w, to_institution_id=clinic["village"], follow_up=plan, continues_referral_id=up["id"]),
        specialist(w),
    )

    assert (down["to_tier"], down["status"], down["scope"]) == ("village", "submitted", "intra_community")
    village_doctor = w.signer.mint(
        "village_doctor",
        subject="vt-doctor",
        institution_id=clinic["village"],
        practitioner_id=clinic["doctor"],
    )
    headers = {"Authorization": f"Bearer {village_doctor}"}
    accepted = await step(c, down, "accept", headers)
    assert accepted["status"] == "accepted"
    visits = (await c.get(f"/v1/referrals/{down['id']}/follow-ups", headers=headers)).json()
    assert {v["owner_institution_id"] for v in visits} == {clinic["village"]}


async def test_a_village_clinic_without_a_team_is_still_refused(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    await refused(c, w, downward(w, to_institution_id=w.ids["village1"]), 422, "village-without-team")
    assert await count(referral_engine, "referrals") == 0


async def test_an_upward_referral_is_continued_by_one_downward_referral_at_a_time(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    up = await arrived_upward(c, w)
    first = await submit(c, w, downward(w, continues_referral_id=up["id"]), specialist(w))
    written = await count(referral_engine, "referrals")

    await refused(c, w, downward(w, continues_referral_id=up["id"]), 409, "way-home-taken")

    assert await count(referral_engine, "referrals") == written
    # a re-request replacing the first stays in the episode: it inherits the link it does not repeat
    again = await submit(c, w, downward(w, replaces_referral_id=first["id"]), specialist(w))
    assert again["continues_referral_id"] == up["id"] and again["replaces_referral_id"] == first["id"]
    seen = await c.get(f"/v1/referrals/{first['id']}", headers=specialist(w))
    assert seen.json()["status"] == "revoked"
    # and may not move to another episode
    other_up = await arrived_upward(c, w)
    await refused(
        c,
        w,
        downward(w, replaces_referral_id=again["id"], continues_referral_id=other_up["id"]),
        422,
        "replaces-other-episode",
    )


async def test_two_downward_referrals_continuing_one_upward_referral_at_once_only_one_is_made(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    up = await arrived_upward(c, w)
    now, db = referral_app.state.clock.now(), referral_app.state.db
    sender = Principal(
        subject="specialist@hospital1",
        role=Role.SPECIALIST,
        institution_id=uuid.UUID(w.ids["hospital1"]),
        practitioner_id=uuid.UUID(w.ids["spec1"]),
    )
    body = ReferralIn.model_validate(downward(w, continues_referral_id=up["id"]))

    second = await while_held(
        db,
        lambda s: submit_referral(s, sender, body, now, Policy()),
        lambda s: submit_referral(s, sender, body, now, Policy()),
    )

    assert isinstance(second, Conflict) and second.code == "way-home-taken"
    async with referral_engine.connect() as conn:
        continuing = await conn.scalar(
            sa.text("SELECT count(*) FROM referrals WHERE continues_referral_id = :u"), {"u": up["id"]}
        )
    assert continuing == 1
