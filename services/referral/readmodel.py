"""Builds the referral service's copy of registry data from registry events.

Snapshots are upserted newest-version-wins (shared.readmodel), so redelivery and replay are harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import EventEnvelope
from shared.readmodel import upsert_snapshot

from . import models as m

REGISTRY_TOPICS = [
    "registry.communities",
    "registry.institutions",
    "registry.practitioners",
    "registry.teams",
    "registry.residents",
    "registry.contracts",
    "registry.catalogues",
]


def _community(d: dict[str, Any]) -> dict[str, Any]:
    return {"county_code": d["county_code"], "lead_institution_id": d["lead_institution_id"]}


def _institution(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": d["name"],
        "tier": d["tier"],
        "kind": d["kind"],
        "region_code": d["region_code"],
        "community_id": d["community_id"],
        "membership": d["membership"],
        "departments": [x["code"] for x in d.get("departments", []) if x.get("active", True)],
    }


def _practitioner(d: dict[str, Any]) -> dict[str, Any]:
    return {"institution_id": d["institution_id"], "title": d["title"]}


def _team(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "community_id": d["community_id"],
        "institution_id": d["institution_id"],
        "members": [x["practitioner_id"] for x in d.get("members", [])],
    }


def _resident(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "community_id": d["community_id"],
        "home_institution_id": d["home_institution_id"],
        "birth_date": d["birth_date"],
    }


def _contract(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "resident_id": d["resident_id"],
        "team_id": d["team_id"],
        "status": d["status"],
        "start_date": d["start_date"],
        "end_date": d["end_date"],
    }


def _catalogue(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "county_code": d["county_code"],
        "catalogue": d["catalogue"],
        "tier": d["tier"],
        "icd10": d["icd10"],
    }


MAPPERS: dict[str, tuple[type[m.Base], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "community": (m.RmCommunity, _community),
    "institution": (m.RmInstitution, _institution),
    "practitioner": (m.RmPractitioner, _practitioner),
    "team": (m.RmTeam, _team),
    "resident": (m.RmResident, _resident),
    "contract": (m.RmContract, _contract),
    "catalogue_entry": (m.RmCatalogueEntry, _catalogue),
}


async def apply_registry_event(session: AsyncSession, event: EventEnvelope) -> None:
    aggregate = event.type.split(".")[1]
    if aggregate not in MAPPERS:
        return  # an aggregate this service does not need
    model, mapper = MAPPERS[aggregate]
    table: sa.Table = model.__table__  # type: ignore[assignment]
    await upsert_snapshot(session, table, event.data, mapper(event.data))


async def clear_read_models(session: AsyncSession) -> None:
    """For a rebuild: empty the read models; replaying the registry topics fills them again."""
    names = ", ".join(t.__tablename__ for t in m.READ_MODELS)
    await session.execute(sa.text(f"TRUNCATE {names}"))
