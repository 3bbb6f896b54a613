"""Referral use cases called directly on a read model the factories prepare (what registry events would
have left), in a unit of work on the real database rolled back after each test: submit and accept, the
rule and the wrong side that write nothing, booking the last slot, a referral office booking for an
accepted referral."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.referral import models as m
from services.referral.domain.rules import Direction, Policy
from services.referral.domain.slots import SlotPolicy
from services.referral.domain.states import Action
from services.referral.schemas import BookIn, NoteIn, ReferralIn, ReferralOut
from services.referral.usecases import referrals, slots
from shared.errors import Conflict, Forbidden, Invalid
from shared.principal import Principal, Role

from ..conftest import NOW
from ..factories import ReferralCounty, ReferralRows, referral_county
from .rollback import TxDatabase

POLICY, SLOT_POLICY = Policy(), SlotPolicy()


def village_doctor(c: ReferralCounty) -> Principal:
    return Principal(
        subject="village-doctor",
        role=Role.VILLAGE_DOCTOR,
        institution_id=c.village.id,
        practitioner_id=c.village_doctor.id,
    )


def coordinator(c: ReferralCounty) -> Principal:
    return Principal(subject="referral-office", role=Role.REFERRAL_COORDINATOR, institution_id=c.hospital.id)


def upward(c: ReferralCounty, **fields: object) -> ReferralIn:
    return ReferralIn.model_validate(
        {
            "direction": Direction.UP,
            "resident_id": c.resident.id,
            "from_institution_id": c.village.id,
            "to_institution_id": c.hospital.id,
            "to_department_code": "NEI",
            "diagnosis_icd10": "I10",
            "reason": "血压控制不佳",
            "clinical_summary": "高血压三年，近一月血压 170/100 mmHg",
            **fields,
        }
    )


async def submitted(referral: TxDatabase, c: ReferralCounty) -> ReferralOut:
    body = upward(c)
    return await referral.run(lambda s: referrals.submit_referral(s, village_doctor(c), body, NOW, POLICY))


async def accepted(referral: TxDatabase, c: ReferralCounty) -> ReferralOut:
    r = await submitted(referral, c)
    return await referral.run(
        lambda s: referrals.act(
            s, coordinator(c), r.id, Action.ACCEPT, NoteIn(version=r.version), NOW, POLICY
        )
    )


async def test_an_upward_referral_is_submitted_then_accepted(referral: TxDatabase) -> None:
    c = await referral_county(referral.session)

    out = await submitted(referral, c)

    assert (out.status, out.scope) == ("submitted", "intra_community")
    assert out.priority  # the village doctor is in the resident's contracted team
    assert out.response_due_at == NOW + POLICY.routine_response
    written = await referral.outbox()
    assert [w.event.type for w in written] == ["referral.notification"] * 3 + ["referral.submitted"]
    assert {w.key for w in written} == {str(out.id)}  # one key: the referral's events stay in order
    assert await referral.count("referral_timeline") == 1

    after = await referral.run(
        lambda s: referrals.act(s, coordinator(c), out.id, Action.ACCEPT, NoteIn(version=1), NOW, POLICY)
    )

    assert (after.status, after.version) == ("accepted", 2)
    assert [w.event.type for w in await referral.outbox()][-1] == "referral.accept"
    assert await referral.count("referral_timeline") == 2


async def test_a_grassroots_disease_needs_a_reason_to_go_up_and_nothing_is_written(
    referral: TxDatabase,
) -> None:
    c = await referral_county(referral.session)
    await ReferralRows(referral.session).catalogue_entry("I10", "grassroots")
    body = upward(c)

    with pytest.raises(Invalid) as caught:
        await referral.run(lambda s: referrals.submit_referral(s, village_doctor(c), body, NOW, POLICY))

    assert caught.value.code == "grassroots-reason-required"
    for table in ("referrals", "referral_timeline", "notifications", "outbox"):
        assert await referral.count(table) == 0, table

    with_reason = upward(c, grassroots_reason="exceeds_capacity")
    out = await referral.run(
        lambda s: referrals.submit_referral(s, village_doctor(c), with_reason, NOW, POLICY)
    )
    assert out.grassroots_reason == "exceeds_capacity"


async def test_the_sender_cannot_accept_its_own_referral(referral: TxDatabase) -> None:
    c = await referral_county(referral.session)
    r = await submitted(referral, c)
    events = len(await referral.outbox())

    with pytest.raises(Forbidden) as caught:
        await referral.run(
            lambda s: referrals.act(s, village_doctor(c), r.id, Action.ACCEPT, NoteIn(version=1), NOW, POLICY)
        )

    assert caught.value.code == "not-your-referral-step"
    row = await referral.get(m.Referral, r.id)
    assert row is not None and (row.status, row.version) == ("submitted", 1)
    assert len(await referral.outbox()) == events


async def test_booking_the_last_slot_then_another_booking_is_a_conflict(referral: TxDatabase) -> None:
    rows = ReferralRows(referral.session)
    c = await referral_county(referral.session)
    other = await rows.resident(c.community)
    session = await rows.clinic_session(c.hospital, {"public": 1})

    def resident(who: m.RmResident) -> Principal:
        return Principal(subject=f"resident:{who.id}", role=Role.RESIDENT, resident_id=who.id)

    first = BookIn(session_id=session.id, resident_id=c.resident.id)
    booking = await referral.run(lambda s: slots.book(s, resident(c.resident), first, NOW, SLOT_POLICY))
    assert (booking.pool, booking.status, booking.channel) == ("public", "booked", "resident")

    second = BookIn(session_id=session.id, resident_id=other.id)
    with pytest.raises(Conflict) as caught:
        await referral.run(lambda s: slots.book(s, resident(other), second, NOW, SLOT_POLICY))

    assert caught.value.code == "no-free-slot"
    assert await referral.count("bookings") == 1
    assert await referral.count("slots", "session_id = :sid AND status = 'booked'", sid=session.id) == 1
    assert [w.event.type for w in await referral.outbox()] == ["referral.booking.booked"]


async def test_the_referral_office_books_an_accepted_priority_referral_into_the_priority_pool(
    referral: TxDatabase,
) -> None:
    rows = ReferralRows(referral.session)
    c = await referral_county(referral.session)
    session = await rows.clinic_session(c.hospital, {"priority": 1, "public": 1}, NOW + timedelta(days=3))
    r = await accepted(referral, c)
    body = BookIn(session_id=session.id, resident_id=c.resident.id, referral_id=r.id)

    booking = await referral.run(lambda s: slots.book(s, coordinator(c), body, NOW, SLOT_POLICY))

    assert (booking.pool, booking.channel, booking.referral_id) == ("priority", "coordinator", r.id)
    row = await referral.get(m.Referral, r.id)
    assert row is not None and row.status == "scheduled" and row.appointment_at == session.starts_at
    assert [w.event.type for w in await referral.outbox()][-2:] == [
        "referral.notification",
        "referral.schedule",
    ]
