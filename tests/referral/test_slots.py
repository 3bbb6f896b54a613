"""Slots over HTTP on the real database: pools and the 40 % floor, each booking channel, windows,
holds, release at the cut-off, the waitlist, cancellations, compliance, and racing bookers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ..conftest import NOW
from .test_deadlines import run_sweep
from .test_referral_flows import count, step, submit, upward
from .world import World


def session_body(
    w: World, capacity: int = 10, starts_in: timedelta = timedelta(days=3), **extra: Any
) -> dict[str, Any]:
    start = NOW + starts_in
    return {
        "institution_id": w.ids["hospital1"],
        "department_code": "XNK",
        "resource_type": "specialist",
        "practitioner_id": w.ids["spec1"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=4)).isoformat(),
        "capacity": capacity,
        **extra,
    }


async def publish(c: AsyncClient, w: World, **kw: Any) -> dict[str, Any]:
    r = await c.post("/v1/sessions", json=session_body(w, **kw), headers=w.token("his_system", "hospital1"))
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def book(
    c: AsyncClient,
    headers: dict[str, str],
    session: dict[str, Any],
    resident: str,
    referral: str | None = None,
    status: int = 201,
) -> dict[str, Any]:
    r = await c.post(
        "/v1/bookings",
        json={"session_id": session["id"], "resident_id": resident, "referral_id": referral},
        headers=headers,
    )
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_publish_splits_pools_and_refuses_bad_sessions(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=10)
    assert s["free"] == {"priority": 1, "family_doctor": 3, "public": 6}
    assert s["opens_at"]["family_doctor"] < s["opens_at"]["public"]
    his = w.token("his_system", "hospital1")
    bad = [
        (session_body(w, capacity=-1), 422),
        (session_body(w, capacity=0), 422),
        ({**session_body(w), "ends_at": (NOW + timedelta(days=2)).isoformat()}, 422),
        (session_body(w, family_doctor_share="0.30"), 422),
        (session_body(w, starts_in=timedelta(hours=-1)), 422),
        ({**session_body(w), "department_code": "NOPE"}, 422),
        ({**session_body(w), "resource_type": "xray9"}, 422),
    ]
    for body, status in bad:
        r = await c.post("/v1/sessions", json=body, headers=his)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    other = await c.post("/v1/sessions", json=session_body(w), headers=w.token("his_system", "hospital2"))
    assert other.status_code == 403
    assert await count(referral_engine, "sessions") == 1 and await count(referral_engine, "slots") == 10


async def test_each_booking_channel_takes_its_pool(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=10)
    gp = w.token("family_doctor", "township1", "gp1")
    fd = await book(c, gp, s, w.ids["resident1"])
    assert fd["pool"] == "family_doctor" and fd["channel"] == "family_doctor"
    not_mine = await book(c, gp, s, w.ids["resident2"], status=403)
    assert not_mine["type"].endswith("not-contracted")
    me = w.token("resident", resident="resident3")
    public = await book(c, me, s, w.ids["resident3"])
    assert public["pool"] == "public"
    assert (await book(c, me, s, w.ids["resident2"], status=403))["status"] == 403
    twice = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"], status=409)
    assert twice["type"].endswith("already-booked")
    # the referral office books an accepted priority referral into the priority pool, and schedules it
    ref = await submit(c, w, upward(w, resident_id=w.ids["resident1"]))
    office = w.token("referral_coordinator", "hospital1")
    ref = await step(c, ref, "accept", office)
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=4))
    booked = await book(c, office, s2, w.ids["resident1"], ref["id"])
    assert booked["pool"] == "priority" and booked["referral_id"] == ref["id"]
    got = (await c.get(f"/v1/referrals/{ref['id']}", headers=office)).json()
    assert got["status"] == "scheduled" and got["appointment_at"] == s2["starts_at"].replace("+00:00", "Z")
    not_accepted = await submit(c, w, upward(w, resident_id=w.ids["resident3"]))
    assert (await book(c, office, s2, w.ids["resident3"], not_accepted["id"], status=409))["type"].endswith(
        "referral-not-accepted"
    )
    unknown = await book(c, office, s2, str(uuid.uuid4()), ref["id"], status=422)
    assert unknown["type"].endswith("unknown-reference")
    mine = (await c.get("/v1/bookings", headers=me)).json()
    assert [b["id"] for b in mine["items"]] == [public["id"]]


async def test_family_doctors_book_before_the_public_window(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=5, starts_in=timedelta(days=10))
    early = await book(c, w.token("resident", resident="resident3"), s, w.ids["resident3"], status=409)
    assert early["type"].endswith("window-not-open") and "开放预约" in early["title_zh"]
    assert (await book(c, w.token("family_doctor", "township1", "gp1"), s, w.ids["resident1"]))[
        "pool"
    ] == "family_doctor"


async def test_hold_confirm_and_expiry(referral_client: AsyncClient, world: World, referral_app: Any) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=2)  # 1 priority, 0 family doctor ... 1 public
    me = w.token("resident", resident="resident3")
    held = await c.post(
        "/v1/holds", json={"session_id": s["id"], "resident_id": w.ids["resident3"]}, headers=me
    )
    assert held.status_code == 201 and held.json()["pool"] == "public"
    other = await c.post(
        "/v1/bookings",
        json={"session_id": s["id"], "resident_id": w.ids["resident1"]},
        headers=w.token("resident", resident="resident1"),
    )
    assert other.status_code == 409  # the only public slot is held
    referral_app.state.clock.at = NOW + timedelta(minutes=11)
    late = await c.post(f"/v1/holds/{held.json()['hold_id']}/confirm", headers=me)
    assert late.status_code == 409 and late.json()["type"].endswith("hold-expired")
    taken = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"])
    assert taken["slot_id"] == held.json()["slot_id"]
    referral_app.state.clock.at = NOW
    s2 = await publish(c, w, capacity=3, starts_in=timedelta(days=5))
    h2 = (
        await c.post(
            "/v1/holds", json={"session_id": s2["id"], "resident_id": w.ids["resident3"]}, headers=me
        )
    ).json()
    ok = await c.post(f"/v1/holds/{h2['hold_id']}/confirm", headers=me)
    assert ok.status_code == 201 and ok.json()["slot_id"] == h2["slot_id"]


async def test_release_at_the_cut_off_keeps_compliance(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=10, starts_in=timedelta(hours=30))
    await book(c, w.token("family_doctor", "township1", "gp1"), s, w.ids["resident1"])
    assert (await run_sweep(referral_app, NOW + timedelta(hours=5))).released_slots == 0
    result = await run_sweep(referral_app, NOW + timedelta(hours=6))
    assert result.released_slots == 3  # 1 priority + 3 family doctor - 1 booked
    found = (
        await c.get(
            "/v1/sessions",
            params={"institution_id": w.ids["hospital1"]},
            headers=w.token("resident", resident="resident3"),
        )
    ).json()
    assert found["items"][0]["free"] == {"public": 9}
    report = (
        await c.get(
            "/v1/compliance",
            params={"institution_id": w.ids["hospital1"], "day_from": "2026-03-01", "day_to": "2026-03-31"},
            headers=w.token("commission_admin"),
        )
    ).json()
    assert len(report) == 1 and report[0]["day"] == "2026-03-02"  # 08:00 Shanghai on 2 March
    line = report[0]
    assert (line["published"], line["family_doctor_published"], line["booked_by_family_doctors"]) == (
        10,
        4,
        1,
    )
    assert line["released"] == 3 and line["used"] == 1 and line["compliant"] is True
    assert line["family_doctor_share"] == "0.4000"
    denied = await c.get(
        "/v1/compliance",
        params={"institution_id": w.ids["hospital1"], "day_from": "2026-03-01", "day_to": "2026-03-31"},
        headers=w.token("resident", resident="resident1"),
    )
    assert denied.status_code == 403


async def test_waitlist_gets_the_freed_slot_most_urgent_first(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=2)  # one public slot
    first = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"])
    routine = await c.post(
        "/v1/waitlist",
        json={
            "institution_id": w.ids["hospital1"],
            "department_code": "XNK",
            "resource_type": "specialist",
            "resident_id": w.ids["resident3"],
        },
        headers=w.token("resident", resident="resident3"),
    )
    urgent = await c.post(
        "/v1/waitlist",
        json={
            "institution_id": w.ids["hospital1"],
            "department_code": "XNK",
            "resource_type": "specialist",
            "resident_id": w.ids["resident2"],
            "urgency": "urgent",
        },
        headers=w.token("resident", resident="resident2"),
    )
    assert routine.status_code == urgent.status_code == 201
    cancel = await c.post(
        f"/v1/bookings/{first['id']}/cancel", headers=w.token("resident", resident="resident1")
    )
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    offered = (
        await c.get(f"/v1/waitlist/{urgent.json()['id']}", headers=w.token("resident", resident="resident2"))
    ).json()
    assert offered["status"] == "offered" and offered["offered_slot_id"] == first["slot_id"]
    still = (
        await c.get(f"/v1/waitlist/{routine.json()['id']}", headers=w.token("resident", resident="resident3"))
    ).json()
    assert still["status"] == "waiting"


async def test_an_entry_whose_window_is_not_open_does_not_block_the_waitlist(
    referral_client: AsyncClient, world: World
) -> None:
    """Ten days ahead the family-doctor pools are open and the public pool is not: an urgent resident
    waiting for a public slot keeps their place, and the family-doctor slot freed goes to the routine
    family-doctor entry behind them."""
    c, w = referral_client, world
    s = await publish(c, w, capacity=5, starts_in=timedelta(days=10))  # 1 priority, 1 family doctor, 3 public
    gp1 = w.token("family_doctor", "township1", "gp1")
    taken = await book(c, gp1, s, w.ids["resident1"])
    assert taken["pool"] == "family_doctor"
    wanted = {"institution_id": w.ids["hospital1"], "department_code": "XNK", "resource_type": "specialist"}
    me = w.token("resident", resident="resident3")
    urgent = await c.post(
        "/v1/waitlist", json={**wanted, "resident_id": w.ids["resident3"], "urgency": "urgent"}, headers=me
    )
    gp2 = w.token("family_doctor", "township2", "gp2")
    routine = await c.post("/v1/waitlist", json={**wanted, "resident_id": w.ids["resident2"]}, headers=gp2)
    assert urgent.status_code == routine.status_code == 201
    assert (await c.post(f"/v1/bookings/{taken['id']}/cancel", headers=gp1)).status_code == 200
    offered = (await c.get(f"/v1/waitlist/{routine.json()['id']}", headers=gp2)).json()
    assert offered["status"] == "offered" and offered["offered_slot_id"] == taken["slot_id"]
    still = (await c.get(f"/v1/waitlist/{urgent.json()['id']}", headers=me)).json()
    assert still["status"] == "waiting"


async def test_cancelled_session_rebooks_or_waitlists(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    s1 = await publish(c, w, capacity=5)
    s2 = await publish(c, w, capacity=5, starts_in=timedelta(days=4))
    a = await book(c, w.token("resident", resident="resident1"), s1, w.ids["resident1"])
    b = await book(c, w.token("family_doctor", "township1", "gp1"), s1, w.ids["resident1"], status=409)
    assert b["type"].endswith("already-booked")
    cancelled = await c.post(f"/v1/sessions/{s1['id']}/cancel", headers=w.token("his_system", "hospital1"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    async with referral_engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT session_id::text, status FROM bookings WHERE resident_id = :r "
                    "ORDER BY created_at, status"
                ),
                {"r": a["resident_id"]},
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == sorted([(s1["id"], "cancelled"), (s2["id"], "booked")])
    again = await book(c, w.token("resident", resident="resident3"), s1, w.ids["resident3"], status=409)
    assert again["type"].endswith("session-cancelled")


async def test_racing_bookers_never_overbook(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    residents = [uuid.uuid4() for _ in range(60)]
    async with (
        referral_engine.begin() as conn
    ):  # residents of the read model, as registry events would make them
        await conn.execute(
            sa.text(
                "INSERT INTO rm_residents (id, community_id, home_institution_id, birth_date, active, version) "
                "SELECT unnest(CAST(:ids AS uuid[])), :c, NULL, DATE '1980-01-01', true, 1"
            ),
            {"ids": [str(r) for r in residents], "c": w.ids["community1"]},
        )
    s = await publish(c, w, capacity=20)  # 12 public
    results = await asyncio.gather(
        *[
            c.post(
                "/v1/bookings",
                json={"session_id": s["id"], "resident_id": str(r)},
                headers={"Authorization": "Bearer " + w.signer.mint("resident", resident_id=str(r))},
            )
            for r in residents
        ]
    )
    codes = [r.status_code for r in results]
    assert codes.count(201) == 12 and codes.count(409) == 48
    async with referral_engine.connect() as conn:
        per_slot = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM bookings WHERE session_id = :s AND status = 'booked' GROUP BY slot_id "
                    "HAVING count(*) > 1"
                ),
                {"s": s["id"]},
            )
        ).all()
        booked = await conn.scalar(
            sa.text("SELECT count(*) FROM bookings WHERE session_id = :s"), {"s": s["id"]}
        )
    assert per_slot == [] and booked == 12


async def test_idempotent_booking_retry(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=10)
    headers = {**w.token("resident", resident="resident3"), "Idempotency-Key": "app-42"}
    body = {"session_id": s["id"], "resident_id": w.ids["resident3"]}
    one, two = (
        await c.post("/v1/bookings", json=body, headers=headers),
        await c.post("/v1/bookings", json=body, headers=headers),
    )
    assert one.status_code == two.status_code == 201 and one.json()["id"] == two.json()["id"]


async def test_no_show_recorded_after_start(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=10, starts_in=timedelta(hours=2))
    b = await book(c, w.token("resident", resident="resident3"), s, w.ids["resident3"])
    office = w.token("referral_coordinator", "hospital1")
    early = await c.post(f"/v1/bookings/{b['id']}/no-show", headers=office)
    assert early.status_code == 409
    referral_app.state.clock.at = NOW + timedelta(hours=3)
    late = await c.post(f"/v1/bookings/{b['id']}/no-show", headers=office)
    assert late.status_code == 200 and late.json()["status"] == "no_show"
