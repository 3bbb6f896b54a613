"""Builds the referral service's copy of registry data from registry events, read through their
contracts (shared.contracts.registry; any stored version is upcast to the current one).

Snapshots are upserted newest-version-wins (shared.readmodel), so redelivery and replay are harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import EventData, decode
from shared.contracts import registry as reg
from shared.events import EventEnvelope
from shared.readmodel import upsert_snapshot

from . import models as m

REGISTRY_TOPICS = [
    reg.COMMUNITIES.topic,
    reg.INSTITUTIONS.topic,
    reg.PRACTITIONERS.topic,
    reg.TEAMS.topic,
    reg.RESIDENTS.topic,
    reg.CONTRACTS.topic,
    reg.CATALOGUES.topic,
]


def _community(d: reg.Community) -> dict[str, Any]:
    return {"county_code": d.county_code, "lead_institution_id": d.lead_institution_id}


def _institution(d: reg.Institution) -> dict[str, Any]:
    return {
        "name": d.name,
        "tier": d.tier,
        "kind": d.kind,
        "region_code": d.region_code,
        "community_id": d.community_id,
        "membership": d.membership,
        "departments": [x.code for x in d.departments if x.active],
    }


def _practitioner(d: reg.Practitioner) -> dict[str, Any]:
    return {"institution_id": d.institution_id, "title": d.title, "profession": d.profession}


def _team(d: reg.Team) -> dict[str, Any]:
    return {
        "community_id": d.community_id,
        "institution_id": d.institution_id,
        "members": [x.practitioner_id for x in d.members],
    }


def _resident(d: reg.Resident) -> dict[str, Any]:
    return {
        "community_id": d.community_id,
        "home_institution_id": d.home_institution_id,
        "birth_date": d.birth_date,
    }


def _contract(d: reg.FamilyDoctorContract) -> dict[str, Any]:
    return {
        "resident_id": d.resident_id,
        "team_id": d.team_id,
        "status": d.status,
        "start_date": d.start_date,
        "end_date": d.end_date,
    }


def _catalogue(d: reg.CatalogueEntry) -> dict[str, Any]:
    return {"county_code": d.county_code, "catalogue": d.catalogue, "tier": d.tier, "icd10": d.icd10}


# the current contract of each registry snapshot → (read model, the columns it keeps)
MAPPERS: dict[type[EventData], tuple[type[m.Base], Callable[[Any], dict[str, Any]]]] = {
    reg.Community: (m.RmCommunity, _community),
    reg.Institution: (m.RmInstitution, _institution),
    reg.Practitioner: (m.RmPractitioner, _practitioner),
    reg.Team: (m.RmTeam, _team),
    reg.Resident: (m.RmResident, _resident),
    reg.FamilyDoctorContract: (m.RmContract, _contract),
    reg.CatalogueEntry: (m.RmCatalogueEntry, _catalogue),
}


async def apply_registry_event(session: AsyncSession, event: EventEnvelope) -> None:
    """Upsert the snapshot the event carries, read through its contract (any version, upcast); an event
    no contract reads raises `ContractError`, which the consumer dead-letters."""
    data = decode(event)
    if type(data) not in MAPPERS:
        return  # a contract this service does not need
    model, mapper = MAPPERS[type(data)]
    table: sa.Table = model.__table__  # type: ignore[assignment]
    await upsert_snapshot(session, table, data, mapper(data))  # type: ignore[arg-type]


async def clear_read_models(session: AsyncSession) -> None:
    """For a rebuild: empty the read models; replaying the registry topics fills them again."""
    names = ", ".join(t.__tablename__ for t in m.READ_MODELS)
    await session.execute(sa.text(f"TRUNCATE {names}"))
