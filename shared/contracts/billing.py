"""What billing publishes (`billing.*`, keyed by community or county): every journal with its lines, so a
downstream reader can rebuild every balance from the events alone, and the budgets, settlements and
disputes behind them. No personal data: amounts per community and institution."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from .base import REGISTRY, Contract, EventData

SOURCE = "/billing"
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
    "out_of_county": PERIODS,  # care the agency settled outside the county, charged when recorded
    "settlement": SETTLEMENTS,
    "dispute": DISPUTES,
}


class JournalLineV1(EventData):
    account: str
    amount: int  # fen; debit > 0, credit < 0
    community_id: str | None
    institution_id: str | None


class JournalPostedV1(EventData):
    journal_id: int
    kind: str
    key: str
    memo: str
    lines: list[JournalLineV1]
    county_code: str
    year: int
    month: int | None


class DerivationStepV1(EventData):
    label: str
    fen: int


class BudgetDerivedV1(EventData):
    community_id: uuid.UUID
    county_code: str
    year: int
    parameter_version: int
    covered_residents: int
    amount: int
    capitation_pool: int
    dip_budget: int
    derivation: list[DerivationStepV1]


class SettlementCompletedV1(EventData):
    county_code: str
    year: int
    community_id: str
    figures: dict[str, Any]  # the settlement's figures by name (fen, points, shares by member)


class DisputeV1(EventData):
    id: uuid.UUID
    claim_id: uuid.UUID
    community_id: uuid.UUID
    institution_id: uuid.UUID
    status: str
    kind: str
    charged: int
    claimed: int
    decided: int | None
    charged_points: Decimal | None
    claimed_points: Decimal | None
    decided_points: Decimal | None
    reason: str
    decision_note: str | None
    opened_at: datetime
    decided_at: datetime | None
    version: int


class DisputeDecidedV1(DisputeV1):
    delta: int


JournalLine = JournalLineV1
JournalPosted = JournalPostedV1
DerivationStep = DerivationStepV1
BudgetDerived = BudgetDerivedV1
SettlementCompleted = SettlementCompletedV1
Dispute = DisputeV1
DisputeDecided = DisputeDecidedV1

JOURNALS = [
    Contract(topic, frozenset({f"billing.{kind}.posted"}), (JournalPostedV1,))
    for kind, topic in TOPIC_OF_JOURNAL.items()
]
BUDGET_DERIVED = Contract(BUDGETS, frozenset({"billing.budget.derived"}), (BudgetDerivedV1,))
SETTLEMENT_COMPLETED = Contract(
    SETTLEMENTS, frozenset({"billing.settlement.completed"}), (SettlementCompletedV1,)
)
DISPUTE_OPENED = Contract(DISPUTES, frozenset({"billing.dispute.opened"}), (DisputeV1,))
DISPUTE_DECIDED = Contract(DISPUTES, frozenset({"billing.dispute.decided"}), (DisputeDecidedV1,))

REGISTRY.add(*JOURNALS, BUDGET_DERIVED, SETTLEMENT_COMPLETED, DISPUTE_OPENED, DISPUTE_DECIDED)
