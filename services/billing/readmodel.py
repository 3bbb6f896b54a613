"""The billing service's copy of registry and referral data, built only from their events; a referral's
event also prices again the claims that waited for it (usecases/repricing.py)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import EventEnvelope, utcnow
from shared.readmodel import upsert_snapshot

from . import models as m
from .usecases.repricing import lock_referral_events, reprice_waiting

REGISTRY_TOPICS = [
    "registry.communities",
    "registry.institutions",
    "registry.teams",
    "registry.residents",
    "registry.contracts",
    "registry.catalogues",
]
REFERRAL_TOPICS = ["referral.referrals"]
CONSUMED_TOPICS = [*REGISTRY_TOPICS, *REFERRAL_TOPICS]

# aggregate → (read model, the snapshot fields it keeps)
MAPPERS: dict[str, tuple[type[m.Base], tuple[str, ...]]] = {
    "community": (m.RmCommunity, ("county_code", "lead_institution_id")),
    "institution": (m.RmInstitution, ("tier", "community_id", "membership")),
    "team": (m.RmTeam, ("community_id", "institution_id")),
    "resident": (m.RmResident, ("community_id", "home_institution_id")),
    "contract": (m.RmContract, ("resident_id", "team_id", "status", "start_date", "end_date")),
    "catalogue_entry": (m.RmCatalogueEntry, ("county_code", "catalogue", "icd10")),
    "referral": (
        m.RmReferral,
        ("resident_id", "status", "from_institution_id", "to_institution_id", "replaces_referral_id"),
    ),
}


async def apply_event(session: AsyncSession, event: EventEnvelope) -> None:
    """Upsert the snapshot an event carries (newest version wins); other aggregates are ignored. After a
    referral's, the claims waiting for that referral are priced again."""
    aggregate = "referral" if event.type.startswith("referral.") else event.type.split(".")[1]
    if aggregate not in MAPPERS:
        return
    model, keep = MAPPERS[aggregate]
    table: sa.Table = model.__table__  # type: ignore[assignment]
    if aggregate == "referral":
        await lock_referral_events(session)
    await upsert_snapshot(session, table, event.data, {k: event.data[k] for k in keep})
    if aggregate == "referral":
        await reprice_waiting(session, uuid.UUID(str(event.data["id"])), utcnow())
