"""Registry events: one topic per aggregate, keyed by its id, carrying the aggregate's full snapshot
(state-carried), so referral and billing can upsert their read models from any single event."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import EventEnvelope
from shared.outbox import record_event

from .models import outbox

TOPICS = {
    "community": "registry.communities",
    "institution": "registry.institutions",
    "practitioner": "registry.practitioners",
    "team": "registry.teams",
    "resident": "registry.residents",
    "contract": "registry.contracts",
    "catalogue_entry": "registry.catalogues",
}


def registry_event(
    aggregate: str, action: str, ident: uuid.UUID, snapshot: BaseModel | dict[str, Any]
) -> EventEnvelope:
    data = snapshot.model_dump(mode="json") if isinstance(snapshot, BaseModel) else snapshot
    return EventEnvelope(
        type=f"registry.{aggregate}.{action}", source="/registry", subject=f"{aggregate}/{ident}", data=data
    )


async def publish(
    session: AsyncSession, aggregate: str, action: str, ident: uuid.UUID, snapshot: BaseModel | dict[str, Any]
) -> None:
    """Queue the event in the caller's transaction (outbox)."""
    event = registry_event(aggregate, action, ident, snapshot)
    await record_event(session, outbox, TOPICS[aggregate], str(ident), event)
