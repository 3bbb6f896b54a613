"""Stopping a session while its bookings change, in two real transactions on the real database (issue #14,
point 1 as reviewed): the stop acts only on bookings still live once it holds their referrals, never
rebooks into a session being stopped, and no slot is taken or offered in a session being stopped. A
referral keeps one live booking, whatever the interleaving; should it ever have two, cancelling one
moves its appointment to the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.referral import models as m
from services.referral.domain.slots import SlotPolicy
from services.referral.schemas import BookIn
from services.referral.usecases.slots import book as book_slot
from services.referral.usecases.slots import cancel_booking, cancel_session
from shared.db import Database
from shared.errors import Conflict
from shared.principal import Principal, Role

from .test_slot_appointments import accepted_referral, at, referral, timeline
from .test_slots import book, publish
from .world import World

POLICY = SlotPolicy()
WAIT = 1.0  # long enough for the second transaction to block on the first one's locks


def office(w: World) -> Principal:
    return Principal(
        subject="referral_coordinator@hospital1",
        role=Role.REFERRAL_COORDINATOR,
        institution_id=uuid.UUID(w.ids["hospital1"]),
    )


def his(w: World) -> Principal:
    return Principal(
        subject="his_system@hospital1", role=Role.HIS_SYSTEM, institution_id=uuid.UUID(w.ids["hospital1"])
    )


async def while_held(
    db: Database,
    first: Callable[[AsyncSession], Awaitable[Any]],
    second: Callable[[AsyncSession], Awaitable[Any]],
) -> Any:
    """`first` runs in a transaction kept open while `second` runs in its own (waiting for first's locks
    where it needs them); then first commits and second finishes. Second's result (or the exception it
    raised)."""

    async def run_second() -> Any:
        async with db.uow() as uow:
            out = await second(uow.session)
            await uow.commit()
            return out

    async with db.uow() as uow:
        await first(uow.session)
        task = asyncio.create_task(run_second())
        await asyncio.sleep(WAIT)
        await uow.commit()
    results = await asyncio.gather(task, return_exceptions=True)
    return results[0]


async def live_bookings(engine: AsyncEngine, referral_id: str) -> list[tuple[str, datetime]]:
    """The referral's live bookings: their session's status and start."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT s.status, s.starts_at FROM bookings b JOIN sessions s ON s.id = b.session_id "
                "WHERE b.referral_id = :r AND b.status = 'booked' ORDER BY s.starts_at"
            ),
            {"r": referral_id},
        )
        return [(status, starts) for status, starts in rows]


async def test_a_booking_cancelled_while_its_session_is_stopped_is_not_rebooked(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    now, db = referral_app.state.clock.now(), referral_app.state.db
    ref = await accepted_referral(c, w)
    a = await publish(c, w, capacity=10)
    await publish(c, w, capacity=10, starts_in=timedelta(days=4))  # where a stopped A's bookings would go
    b = await book(c, w.token("referral_coordinator", "hospital1"), a, w.ids["resident1"], ref["id"])

    await while_held(
        db,
        lambda s: cancel_booking(s, office(w), uuid.UUID(b["id"]), now, POLICY),
        lambda s: cancel_session(s, his(w), uuid.UUID(a["id"]), now, POLICY),
    )

    got = await referral(c, w, ref)
    assert (got["status"], got["appointment_at"]) == ("accepted", None)
    assert await live_bookings(referral_engine, ref["id"]) == []
    assert [t["action"] for t in await timeline(c, w, ref)][-1] == "unschedule"  # once, by the cancel


async def test_a_referral_moved_while_its_old_session_is_stopped_keeps_one_live_booking(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    now, db = referral_app.state.clock.now(), referral_app.state.db
    ref = await accepted_referral(c, w)
    a = await publish(c, w, capacity=10)
    await publish(c, w, capacity=10, starts_in=timedelta(days=4))
    b = await publish(c, w, capacity=10, starts_in=timedelta(days=5))
    await book(c, w.token("referral_coordinator", "hospital1"), a, w.ids["resident1"], ref["id"])
    move = BookIn(
        session_id=uuid.UUID(b["id"]),
        resident_id=uuid.UUID(w.ids["resident1"]),
        referral_id=uuid.UUID(ref["id"]),
    )

    await while_held(
        db,
        lambda s: book_slot(s, office(w), move, now, POLICY),  # the referral office moves it from A to B
        lambda s: cancel_session(s, his(w), uuid.UUID(a["id"]), now, POLICY),
    )

    assert await live_bookings(referral_engine, ref["id"]) == [("open", at(b["starts_at"]))]
    got = await referral(c, w, ref)
    assert got["status"] == "scheduled" and at(got["appointment_at"]) == at(b["starts_at"])


async def test_two_sessions_stopped_at_once_move_no_booking_into_each_other(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    now, db = referral_app.state.clock.now(), referral_app.state.db
    ref = await accepted_referral(c, w)
    x = await publish(c, w, capacity=10)
    n = await publish(c, w, capacity=10, starts_in=timedelta(days=4))  # X's bookings' next session
    await book(c, w.token("referral_coordinator", "hospital1"), x, w.ids["resident1"], ref["id"])

    await while_held(
        db,
        lambda s: cancel_session(s, his(w), uuid.UUID(n["id"]), now, POLICY),
        lambda s: cancel_session(s, his(w), uuid.UUID(x["id"]), now, POLICY),
    )

    assert await live_bookings(referral_engine, ref["id"]) == []  # waitlisted, not moved into stopped N
    got = await referral(c, w, ref)
    assert (got["status"], got["appointment_at"]) == ("accepted", None)


async def test_a_booking_made_while_the_session_is_stopped_waits_and_is_refused(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    now, db = referral_app.state.clock.now(), referral_app.state.db
    s = await publish(c, w, capacity=10)
    me = Principal(subject="resident3", role=Role.RESIDENT, resident_id=uuid.UUID(w.ids["resident3"]))
    body = BookIn(session_id=uuid.UUID(s["id"]), resident_id=uuid.UUID(w.ids["resident3"]))

    refused = await while_held(
        db,
        lambda x: cancel_session(x, his(w), uuid.UUID(s["id"]), now, POLICY),
        lambda x: book_slot(x, me, body, now, POLICY),
    )

    assert isinstance(refused, Conflict) and refused.code == "session-cancelled"
    async with referral_engine.connect() as conn:
        booked = await conn.scalar(
            sa.text("SELECT count(*) FROM bookings WHERE session_id = :s AND status = 'booked'"),
            {"s": s["id"]},
        )
    assert booked == 0


async def waitlist(c: AsyncClient, w: World, resident: str) -> dict[str, Any]:
    r = await c.post(
        "/v1/waitlist",
        json={
            "institution_id": w.ids["hospital1"],
            "department_code": "XNK",
            "resource_type": "specialist",
            "resident_id": w.ids[resident],
        },
        headers=w.token("resident", resident=resident),
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def entry(c: AsyncClient, w: World, resident: str, ident: str) -> dict[str, Any]:
    r = await c.get(f"/v1/waitlist/{ident}", headers=w.token("resident", resident=resident))
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_a_slot_freed_while_its_session_is_stopped_is_offered_to_nobody(
    referral_client: AsyncClient, world: World, referral_app: Any, referral_engine: AsyncEngine
) -> None:
    """The holder's cancel has its booking locked when the stop starts; the slot it frees is not held for
    the waitlist in the session being stopped."""
    c, w = referral_client, world
    now, db = referral_app.state.clock.now(), referral_app.state.db
    s = await publish(c, w, capacity=2)  # one public slot
    b = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"])
    waiting = await waitlist(c, w, "resident3")
    holder = Principal(subject="resident1", role=Role.RESIDENT, resident_id=uuid.UUID(w.ids["resident1"]))
    stopping: asyncio.Task[Any] | None = None

    async def stop() -> None:
        async with db.uow() as uow:
            await cancel_session(uow.session, his(w), uuid.UUID(s["id"]), now, POLICY)
            await uow.commit()

    async with db.uow() as uow:
        await uow.session.get(m.Booking, uuid.UUID(b["id"]), with_for_update=True)  # the cancel has begun
        stopping = asyncio.create_task(stop())
        await asyncio.sleep(WAIT)  # the stop holds the session and waits for the booking
        await cancel_booking(uow.session, holder, uuid.UUID(b["id"]), now, POLICY)
        await uow.commit()
    await stopping

    assert (await entry(c, w, "resident3", waiting["id"]))["status"] == "waiting"
    async with referral_engine.connect() as conn:
        offered = await conn.scalar(
            sa.text("SELECT count(*) FROM outbox WHERE payload->>'type' = 'referral.waitlist.offered'")
        )
    assert offered == 0


async def test_an_offer_of_a_stopped_sessions_slot_is_taken_back(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=2)  # one public slot
    b = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"])
    waiting = await waitlist(c, w, "resident3")
    cancelled = await c.post(
        f"/v1/bookings/{b['id']}/cancel", headers=w.token("resident", resident="resident1")
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await entry(c, w, "resident3", waiting["id"]))["status"] == "offered"

    stopped = await c.post(f"/v1/sessions/{s['id']}/cancel", headers=w.token("his_system", "hospital1"))

    assert stopped.status_code == 200, stopped.text
    again = await entry(c, w, "resident3", waiting["id"])
    assert (again["status"], again["offered_slot_id"]) == ("waiting", None)


async def test_a_referral_cannot_have_two_live_bookings(
    referral_client: AsyncClient, world: World, referral_engine: AsyncEngine
) -> None:
    c, w = referral_client, world
    ref = await accepted_referral(c, w)
    s1 = await publish(c, w, capacity=10)
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=5))
    await book(c, w.token("referral_coordinator", "hospital1"), s1, w.ids["resident1"], ref["id"])
    with pytest.raises(IntegrityError, match="uq_booking_referral"):
        async with referral_engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO bookings (id, slot_id, session_id, resident_id, pool, channel, referral_id, "
                    "booked_by, status, created_at) SELECT gen_random_uuid(), id, session_id, :p, pool, "
                    "'coordinator', :r, 'x', 'booked', now() FROM slots WHERE session_id = :s LIMIT 1"
                ),
                {"p": w.ids["resident1"], "r": ref["id"], "s": s2["id"]},
            )


async def test_cancelling_one_of_two_live_bookings_moves_the_appointment_to_the_other(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    """Defence in depth: should a referral have two live bookings (possible only without the unique
    index, dropped here inside a transaction that is rolled back), cancelling one leaves the referral
    scheduled at the other, not at the cancelled one."""
    c, w = referral_client, world
    now, db = referral_app.state.clock.now(), referral_app.state.db
    ref = await accepted_referral(c, w)
    s1 = await publish(c, w, capacity=10)
    s2 = await publish(c, w, capacity=10, starts_in=timedelta(days=5))
    first = await book(c, w.token("referral_coordinator", "hospital1"), s1, w.ids["resident1"], ref["id"])
    async with db.uow() as uow:
        s = uow.session
        await s.execute(sa.text("DROP INDEX IF EXISTS uq_booking_referral"))
        await s.execute(
            sa.text(
                "WITH slot AS (UPDATE slots SET status = 'booked' WHERE id = (SELECT id FROM slots "
                "WHERE session_id = :s ORDER BY slot_no LIMIT 1) RETURNING id, session_id, pool) "
                "INSERT INTO bookings (id, slot_id, session_id, resident_id, pool, channel, referral_id, "
                "booked_by, status, created_at) SELECT gen_random_uuid(), id, session_id, :p, pool, "
                "'coordinator', :r, 'x', 'booked', :now FROM slot"
            ),
            {"s": s2["id"], "p": w.ids["resident1"], "r": ref["id"], "now": now},
        )
        await cancel_booking(s, office(w), uuid.UUID(first["id"]), now, POLICY)
        r = await s.get(m.Referral, uuid.UUID(ref["id"]))
        assert r is not None
        status, appointment = r.status, r.appointment_at
        await s.rollback()  # the index comes back with the rollback
    assert status == "scheduled" and appointment == at(s2["starts_at"])
