"""Referral events (`referral.referrals`, keyed by referral id) and notification events
(`referral.notifications`), written to the outbox with the change."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import EventEnvelope
from shared.outbox import record_event

from .models import outbox
from .schemas import NotificationOut, ReferralOut

REFERRALS = "referral.referrals"
NOTIFICATIONS = "referral.notifications"
TOPICS = [REFERRALS, NOTIFICATIONS, "referral.sessions", "referral.bookings"]


async def publish_referral(
    s: AsyncSession, action: str, snapshot: ReferralOut, extra: dict[str, object] | None = None
) -> None:
    data = snapshot.model_dump(mode="json")
    if extra:
        data["event"] = extra
    event = EventEnvelope(
        type=f"referral.{action}", source="/referral", subject=f"referral/{snapshot.id}", data=data
    )
    await record_event(s, outbox, REFERRALS, str(snapshot.id), event)


async def publish_notification(s: AsyncSession, note: NotificationOut) -> None:
    event = EventEnvelope(
        type="referral.notification",
        source="/referral",
        subject=f"referral/{note.referral_id}",
        data=note.model_dump(mode="json"),
    )
    await record_event(s, outbox, NOTIFICATIONS, str(note.referral_id), event)
