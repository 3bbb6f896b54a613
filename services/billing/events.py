"""Billing events (`billing.*`, keyed by community or county), written to the outbox with the posting.
Every journal travels with its lines, so a downstream reader can rebuild every balance from the events."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import EventEnvelope
from shared.outbox import record_event

from .domain.ledger import Journal
from .models import outbox

BUDGETS = "billing.budgets"
PREPAYMENTS = "billing.prepayments"
PERIODS = "billing.periods"
SETTLEMENTS = "billing.settlements"
DISPUTES = "billing.disputes"
TOPICS = [BUDGETS, PREPAYMENTS, PERIODS, SETTLEMENTS, DISPUTES]
TOPIC_OF_JOURNAL = {
    "budget": BUDGETS,
    "prepayment": PREPAYMENTS,
    "month_close": PERIODS,
    "reprice": PERIODS,  # a claim of a closed month priced again once its referral was heard of
    "settlement": SETTLEMENTS,
    "dispute": DISPUTES,
}


def journal_data(j: Journal, journal_id: int) -> dict[str, Any]:
    return {
        "journal_id": journal_id,
        "kind": j.kind,
        "key": j.key,
        "memo": j.memo,
        "lines": [asdict(x) for x in j.lines],
    }


async def publish(
    s: AsyncSession, kind: str, key: str, subject: str, data: dict[str, Any], topic: str | None = None
) -> None:
    event = EventEnvelope(type=f"billing.{kind}", source="/billing", subject=subject, data=data)
    await record_event(s, outbox, topic or TOPIC_OF_JOURNAL[kind.split(".")[0]], key, event)
