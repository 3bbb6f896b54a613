"""Registry events: one topic per aggregate, keyed by its id, carrying the aggregate's snapshot as its
contract (shared.contracts.registry) says — built here from the aggregate's rows, never from the API's
response models, so an API change cannot change a topic. Use cases raise them with
`shared.db.collect`; the unit of work writes them to the outbox when it commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from shared import contracts
from shared.contracts import registry as c
from shared.events import OutgoingEvent

from . import models as m

TOPICS = c.TOPICS  # aggregate → topic


def _fields(obj: Any, model: type[contracts.EventData], **children: Any) -> dict[str, Any]:
    """The contract's fields read off a row (children, which are not columns, given)."""
    return {name: children[name] if name in children else getattr(obj, name) for name in model.model_fields}


def registry_event(aggregate: str, action: str, ident: uuid.UUID, data: contracts.EventData) -> OutgoingEvent:
    return contracts.event(
        f"registry.{aggregate}.{action}",
        data,
        source=c.SOURCE,
        subject=f"{aggregate}/{ident}",
        key=str(ident),
    )


def community(action: str, x: m.Community) -> OutgoingEvent:
    return registry_event("community", action, x.id, c.Community.model_validate(x))


def institution(action: str, x: m.Institution, departments: Sequence[m.Department]) -> OutgoingEvent:
    depts = [c.Department.model_validate(d) for d in departments]
    data = c.Institution.model_validate(_fields(x, c.Institution, departments=depts))
    return registry_event("institution", action, x.id, data)


def practitioner(action: str, x: m.Practitioner, postings: Sequence[m.Posting]) -> OutgoingEvent:
    posts = [c.Posting.model_validate(p) for p in postings]
    data = c.Practitioner.model_validate(_fields(x, c.Practitioner, postings=posts))
    return registry_event("practitioner", action, x.id, data)


def team(action: str, x: m.Team, members: Sequence[m.TeamMember]) -> OutgoingEvent:
    people = [c.TeamMember.model_validate(p) for p in members]
    return registry_event("team", action, x.id, c.Team.model_validate(_fields(x, c.Team, members=people)))


def resident(action: str, x: m.Resident | Any) -> OutgoingEvent:
    """`x`: the row, or anything with its attributes (the demo loader's plain rows)."""
    return registry_event("resident", action, x.id, c.Resident.model_validate(x))


def contract(action: str, x: m.Contract | Any) -> OutgoingEvent:
    return registry_event("contract", action, x.id, c.FamilyDoctorContract.model_validate(x))


def catalogue_entry(action: str, x: m.CatalogueEntry) -> OutgoingEvent:
    return registry_event("catalogue_entry", action, x.id, c.CatalogueEntry.model_validate(x))


def outbox_row(e: OutgoingEvent) -> dict[str, Any]:
    """The outbox row of an event, for a bulk insert that needs no per-key ordering (rows new to everyone,
    as the demo loader writes them); everything else goes through the unit of work."""
    return {
        "event_id": uuid.UUID(e.envelope.id),
        "topic": e.topic,
        "key": e.key,
        "payload": e.envelope.model_dump(mode="json"),
    }
