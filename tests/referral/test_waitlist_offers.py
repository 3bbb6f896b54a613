"""A waitlist offer is a hold for one entry (issue #14 review): when it lapses unconfirmed the entry waits
again in its place and the slot goes to whoever waits behind it; confirming a hold books the entry it was
offered to, not another entry once offered the same slot."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ..conftest import NOW
from .test_deadlines import run_sweep
from .test_slots import book, publish
from .world import World

WANTED = {"department_code": "XNK", "resource_type": "specialist"}


async def resident(engine: AsyncEngine, w: World) -> tuple[str, dict[str, str]]:
    """A resident of community 1 in the read model (as registry events would leave one), and their token."""
    ident = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO rm_residents (id, community_id, home_institution_id, birth_date, active, version) "
                "VALUES (:i, :c, NULL, DATE '1970-01-01', true, 1)"
            ),
            {"i": ident, "c": w.ids["community1"]},
        )
    return ident, {"Authorization": "Bearer " + w.signer.mint("resident", resident_id=ident)}


async def wait(c: AsyncClient, w: World, who: str, urgency: str = "routine") -> dict[str, Any]:
    r = await c.post(
        "/v1/waitlist",
        json={**WANTED, "institution_id": w.ids["hospital1"], "resident_id": w.ids[who], "urgency": urgency},
        headers=w.token("resident", resident=who),
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def entry(c: AsyncClient, w: World, who: str, e: dict[str, Any]) -> dict[str, Any]:
    r = await c.get(f"/v1/waitlist/{e['id']}", headers=w.token("resident", resident=who))
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def hold_of(engine: AsyncEngine, slot_id: str) -> str:
    async with engine.connect() as conn:
        hold = await conn.scalar(sa.text("SELECT hold_id::text FROM slots WHERE id = :s"), {"s": slot_id})
    assert hold is not None
    return str(hold)


async def test_a_lapsed_offer_waits_again_and_the_slot_goes_to_the_next_entry(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=2)  # one public slot
    taken = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"])
    first = await wait(c, w, "resident3", "urgent")
    second = await wait(c, w, "resident2")
    cancel = await c.post(
        f"/v1/bookings/{taken['id']}/cancel", headers=w.token("resident", resident="resident1")
    )
    assert cancel.status_code == 200, cancel.text
    assert (await entry(c, w, "resident3", first))["status"] == "offered"

    result = await run_sweep(referral_app, NOW + timedelta(minutes=11))  # the 10-minute hold lapsed

    lapsed = await entry(c, w, "resident3", first)
    assert (lapsed["status"], lapsed["offered_slot_id"]) == ("waiting", None)
    offered = await entry(c, w, "resident2", second)
    assert (offered["status"], offered["offered_slot_id"]) == ("offered", taken["slot_id"])
    assert result.lapsed_offers == 1
    confirmed = await c.post(
        f"/v1/holds/{await hold_of(referral_engine, taken['slot_id'])}/confirm",
        headers=w.token("resident", resident="resident2"),
    )
    assert confirmed.status_code == 201, confirmed.text
    assert (await entry(c, w, "resident3", first))["status"] == "waiting"  # for the next slot freed


async def test_confirming_a_hold_books_only_the_entry_it_was_offered_to(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    """The first entry's offer of slot X lapses unnoticed (no sweep yet); X, free again, is offered to
    the second entry when another slot frees; the second confirms: the first was not booked."""
    c, w = referral_client, world
    s = await publish(c, w, capacity=4)  # two public slots: X, then Y
    one, one_token = await resident(referral_engine, w)
    two, two_token = await resident(referral_engine, w)
    x = await book(c, one_token, s, one)
    y = await book(c, two_token, s, two)
    first = await wait(c, w, "resident3", "urgent")
    second = await wait(c, w, "resident2")
    assert (await c.post(f"/v1/bookings/{x['id']}/cancel", headers=one_token)).status_code == 200
    assert (await entry(c, w, "resident3", first))["offered_slot_id"] == x["slot_id"]
    referral_app.state.clock.at = NOW + timedelta(minutes=11)
    assert (await c.post(f"/v1/bookings/{y['id']}/cancel", headers=two_token)).status_code == 200
    assert (await entry(c, w, "resident2", second))["offered_slot_id"] == x["slot_id"]  # X before Y

    confirmed = await c.post(
        f"/v1/holds/{await hold_of(referral_engine, x['slot_id'])}/confirm",
        headers=w.token("resident", resident="resident2"),
    )

    assert confirmed.status_code == 201, confirmed.text
    assert (await entry(c, w, "resident2", second))["status"] == "booked"
    assert (await entry(c, w, "resident3", first))["status"] != "booked"
