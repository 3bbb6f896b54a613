"""The billing service's copy of registry and referral data, built only from their events (read through
their contracts, shared.contracts); a referral's event also prices again the claims that waited for it
(usecases/repricing.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import EventData, decode
from shared.contracts import referral as ref
from shared.contracts import registry as reg
from shared.events import EventEnvelope, utcnow
from shared.readmodel import upsert_snapshot

from . import models as m
from .usecases.repricing import lock_referral_events, reprice_waiting

REGISTRY_TOPICS = [
    reg.COMMUNITIES.topic,
    reg.INSTITUTIONS.topic,
    reg.TEAMS.topic,
    reg.RESIDENTS.topic,
    reg.CONTRACTS.topic,
    reg.CATALOGUES.topic,
]
REFERRAL_TOPICS = [ref.REFERRALS.topic]
CONSUMED_TOPICS = [*REGISTRY_TOPICS, *REFERRAL_TOPICS]

# the current contract of each snapshot → (read model, the snapshot fields it keeps)
MAPPERS: dict[type[EventData], tuple[type[m.Base], tuple[str, ...]]] = {
    reg.Community: (m.RmCommunity, ("county_code", "lead_institution_id")),
    reg.Institution: (m.RmInstitution, ("tier", "community_id", "membership", "insurance_designated")),
    reg.Team: (m.RmTeam, ("community_id", "institution_id")),
    reg.Resident: (m.RmResident, ("community_id", "home_institution_id")),
    reg.FamilyDoctorContract: (
        m.RmContract,
        ("resident_id", "team_id", "status", "start_date", "end_date", "terminated_at"),
    ),
    reg.CatalogueEntry: (m.RmCatalogueEntry, ("county_code", "catalogue", "icd10")),
    ref.Referral: (
        m.RmReferral,
        (
            "resident_id",
            "status",
            "direction",
            "from_institution_id",
            "to_institution_id",
            "replaces_referral_id",
            "continues_referral_id",
        ),
    ),
}


async def apply_event(session: AsyncSession, event: EventEnvelope) -> None:
    """Upsert the snapshot an event carries, read through its contract (any version, upcast; newest
    version wins); contracts this service does not keep are ignored, and an event no contract reads
    raises `ContractError` (dead-lettered). After a referral's, the claims waiting for that referral are
    priced again."""
    data = decode(event)
    if type(data) not in MAPPERS:
        return
    model, keep = MAPPERS[type(data)]
    table: sa.Table = model.__table__  # type: ignore[assignment]
    if isinstance(data, ref.Referral):
        await lock_referral_events(session)
    await upsert_snapshot(session, table, data, {k: getattr(data, k) for k in keep})  # type: ignore[arg-type]
    if isinstance(data, ref.Referral):
        await reprice_waiting(session, data.id, utcnow())
