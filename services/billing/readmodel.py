"""The billing service's copy of registry and referral data, built only from their events."""

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
    "registry.teams",
    "registry.residents",
    "registry.contracts",
    "registry.catalogues",
]
REFERRAL_TOPICS = ["referral.referrals"]
CONSUMED_TOPICS = [*REGISTRY_TOPICS, *REFERRAL_TOPICS]

Mapper = Callable[[dict[str, Any]], dict[str, Any]]
MAPPERS: dict[str, tuple[type[m.Base], Mapper]] = {
    "community": (m.RmCommunity, lambda d: {k: d[k] for k in ("county_code", "lead_institution_id")}),
    "institution": (m.RmInstitution, lambda d: {k: d[k] for k in ("tier", "community_id", "membership")}),
    "team": (m.RmTeam, lambda d: {k: d[k] for k in ("community_id", "institution_id")}),
    "resident": (m.RmResident, lambda d: {k: d[k] for k in ("community_id", "home_institution_id")}),
    "contract": (
        m.RmContract,
        lambda d: {k: d[k] for k in ("resident_id", "team_id", "status", "start_date", "end_date")},
    ),
    "catalogue_entry": (
        m.RmCatalogueEntry,
        lambda d: {k: d[k] for k in ("county_code", "catalogue", "icd10")},
    ),
    "referral": (
        m.RmReferral,
        lambda d: {
            k: d[k]
            for k in (
                "resident_id",
                "status",
                "from_institution_id",
                "to_institution_id",
                "replaces_referral_id",
            )
        },
    ),
}


async def apply_event(session: AsyncSession, event: EventEnvelope) -> None:
    """Upsert the snapshot an event carries (newest version wins); other aggregates are ignored."""
    aggregate = "referral" if event.type.startswith("referral.") else event.type.split(".")[1]
    if aggregate not in MAPPERS:
        return
    model, mapper = MAPPERS[aggregate]
    data = event.data
    values: dict[str, Any] = {"id": data["id"], "version": data["version"], **mapper(data)}
    table: sa.Table = model.__table__  # type: ignore[assignment]
    if "active" in table.c:
        values["active"] = data.get("active", True)
    await upsert_snapshot(session, table, values)


async def clear_read_models(session: AsyncSession) -> None:
    names = ", ".join(t.__tablename__ for t in m.READ_MODELS)
    await session.execute(sa.text(f"TRUNCATE {names}"))
