"""Referral events, as their contracts (shared.contracts.referral) say, built here from the service's rows
(never from the API's response models): referral snapshots after each step (`referral.referrals`, keyed
by referral id), notifications (`referral.notifications`), sessions and bookings (`referral.sessions`,
`referral.bookings`). Use cases raise them with `shared.db.collect`; the unit of work writes them to the
outbox when it commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared import contracts
from shared.contracts import referral as c
from shared.events import OutgoingEvent

from . import models as m

REFERRALS = c.REFERRALS.topic
NOTIFICATIONS = c.NOTIFICATIONS.topic
SESSIONS = c.SESSION_PUBLISHED.topic
BOOKINGS = c.BOOKING_BOOKED.topic
TOPICS = [REFERRALS, NOTIFICATIONS, SESSIONS, BOOKINGS]


def _event(type_: str, data: contracts.EventData, subject: str, key: uuid.UUID) -> OutgoingEvent:
    return contracts.event(type_, data, source=c.SOURCE, subject=subject, key=str(key))


def referral_step(
    r: m.Referral, action: str, from_status: str | None, role: str, detail: dict[str, Any]
) -> OutgoingEvent:
    """The referral after a step. Only the structured part of the step's detail travels (codes, ids,
    dates, flags: `STEP_DETAIL_KEYS`); notes, reasons and advice stay in the service's timeline."""
    data = c.Referral.model_validate(
        {
            **{
                k: getattr(r, k)
                for k in c.Referral.model_fields
                if k not in {"event", "discharge_summary_provided"}
            },
            "discharge_summary_provided": r.discharge_summary is not None,
            "event": c.ReferralStep(
                action=action,
                from_status=from_status,
                role=role,
                detail={k: v for k, v in detail.items() if k in c.STEP_DETAIL_KEYS},
            ),
        }
    )
    return _event(f"referral.{action}", data, f"referral/{r.id}", r.id)


def notification(note: m.Notification) -> OutgoingEvent:
    data = c.Notification.model_validate(note)
    return _event("referral.notification", data, f"referral/{note.referral_id}", note.referral_id)


def session_published(sess: m.Session, free: dict[str, int], opens_at: dict[str, datetime]) -> OutgoingEvent:
    data = c.Session.model_validate({**_columns(sess, c.Session), "free": free, "opens_at": opens_at})
    return _event("referral.session.published", data, f"session/{sess.id}", sess.id)


def session_cancelled(sess: m.Session, opens_at: dict[str, datetime], bookings: int) -> OutgoingEvent:
    data = c.SessionCancelled.model_validate(
        {**_columns(sess, c.SessionCancelled), "free": {}, "opens_at": opens_at, "bookings": bookings}
    )
    return _event("referral.session.cancelled", data, f"session/{sess.id}", sess.id)


def session_released(session_id: uuid.UUID, released: int, at: datetime) -> OutgoingEvent:
    data = c.SessionReleased(session_id=session_id, released=released, at=at)
    return _event("referral.session.released", data, f"session/{session_id}", session_id)


def booking_booked(
    b: m.Booking, institution_id: uuid.UUID, department_code: str, starts_at: datetime
) -> OutgoingEvent:
    data = c.BookingBooked.model_validate(
        {
            **_columns(b, c.Booking),
            "institution_id": institution_id,
            "department_code": department_code,
            "starts_at": starts_at,
        }
    )
    return _event("referral.booking.booked", data, f"booking/{b.id}", b.id)


def booking_cancelled(
    b: m.Booking, moved: m.Booking | None = None, *, with_session: bool = False
) -> OutgoingEvent:
    """Cancelled by its holder, or (`with_session`) with its session: then rebooked as `moved`, or
    waitlisted when there is none."""
    fields = _columns(b, c.Booking)
    if with_session:
        fields |= {
            "reason": "session_cancelled",
            "rebooked_as": moved.id if moved else None,
            "rebooked_session": moved.session_id if moved else None,
            "waitlisted": moved is None,
        }
    data = c.BookingCancelled.model_validate(fields)
    return _event("referral.booking.cancelled", data, f"booking/{b.id}", b.id)


def booking_no_show(b: m.Booking) -> OutgoingEvent:
    return _event("referral.booking.no_show", c.Booking.model_validate(b), f"booking/{b.id}", b.id)


def waitlist_offered(entry: m.WaitlistEntry, hold_id: uuid.UUID, session_id: uuid.UUID) -> OutgoingEvent:
    data = c.WaitlistOffered.model_validate(
        {
            **_columns(entry, c.WaitlistOffered, skip={"hold_id", "session_id"}),
            "hold_id": hold_id,
            "session_id": session_id,
        }
    )
    return _event("referral.waitlist.offered", data, f"waitlist/{entry.id}", entry.id)


def _columns(row: Any, model: type[contracts.EventData], skip: set[str] | None = None) -> dict[str, Any]:
    """The row's attributes the contract has (those that are columns of the row)."""
    return {k: getattr(row, k) for k in model.model_fields if hasattr(row, k) and k not in (skip or set())}
