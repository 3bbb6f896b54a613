"""Billing events (`billing.*`, keyed by community or county), as their contracts
(shared.contracts.billing) say, built here from the ledger's journals and the service's rows. Every
journal travels with its lines, so a downstream reader can rebuild every balance from the events. Use
cases raise them with `shared.db.collect`; the unit of work writes them to the outbox when it commits."""

from __future__ import annotations

from typing import Any

from shared import contracts
from shared.contracts import billing as c
from shared.events import OutgoingEvent

from . import models as m
from .domain.ledger import Journal

BUDGETS, PREPAYMENTS, PERIODS, SETTLEMENTS, DISPUTES = (
    c.BUDGETS,
    c.PREPAYMENTS,
    c.PERIODS,
    c.SETTLEMENTS,
    c.DISPUTES,
)
TOPICS = c.TOPICS
TOPIC_OF_JOURNAL = c.TOPIC_OF_JOURNAL


def _event(type_: str, data: contracts.EventData, subject: str, key: str) -> OutgoingEvent:
    return contracts.event(type_, data, source=c.SOURCE, subject=subject, key=key)


def journal_posted(
    j: Journal, journal_id: int, county: str, year: int, month: int | None, key: str
) -> OutgoingEvent:
    data = c.JournalPosted(
        journal_id=journal_id,
        kind=j.kind,
        key=j.key,
        memo=j.memo,
        lines=[c.JournalLine.model_validate(x) for x in j.lines],
        county_code=county,
        year=year,
        month=month,
    )
    return _event(f"billing.{j.kind}.posted", data, f"billing/{j.key}", key)


def budget_derived(b: m.Budget) -> OutgoingEvent:
    data = c.BudgetDerived.model_validate(b)
    return _event("billing.budget.derived", data, f"community/{b.community_id}", str(b.community_id))


def settlement_completed(county: str, year: int, community: str, figures: dict[str, Any]) -> OutgoingEvent:
    data = c.SettlementCompleted(county_code=county, year=year, community_id=community, figures=figures)
    return _event("billing.settlement.completed", data, f"community/{community}", community)


def dispute_opened(d: m.Dispute) -> OutgoingEvent:
    return _event(
        "billing.dispute.opened", c.Dispute.model_validate(d), f"dispute/{d.id}", str(d.community_id)
    )


def dispute_decided(d: m.Dispute, delta: int) -> OutgoingEvent:
    fields = {k: getattr(d, k) for k in c.Dispute.model_fields}
    data = c.DisputeDecided.model_validate({**fields, "delta": delta})
    return _event("billing.dispute.decided", data, f"dispute/{d.id}", str(d.community_id))
