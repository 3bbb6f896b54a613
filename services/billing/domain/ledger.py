"""Double-entry journals in integer fen: every journal's lines sum to zero (debit positive, credit
negative), so the trial balance of the whole ledger is zero by construction. The database enforces the
same with a deferred constraint trigger.

Read a debit balance as "the fen sit here" (a community's cash, what members were paid) and a credit
balance as "the fen came from here" (contributions raised, the part of an overspend a party bore)."""

from __future__ import annotations

from dataclasses import dataclass, field


class UnbalancedJournal(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    account: str  # chart below
    amount: int  # fen; debit > 0, credit < 0
    community_id: str | None = None
    institution_id: str | None = None


@dataclass
class Journal:
    kind: str
    key: str  # natural key: posting the same journal twice is refused by a unique index
    memo: str
    lines: list[Line] = field(default_factory=list)

    def add(
        self, account: str, amount: int, community_id: str | None = None, institution_id: str | None = None
    ) -> None:
        if amount:
            self.lines.append(Line(account, amount, community_id, institution_id))

    def check(self) -> None:
        if sum(x.amount for x in self.lines) != 0:
            raise UnbalancedJournal(f"journal {self.key} does not balance")


# The chart of accounts (where the fen sit):
CONTRIBUTIONS = "fund.contributions"  # raised from residents and the treasury (credit)
CATASTROPHIC = "fund.catastrophic"  # bought catastrophic insurance
RISK_RESERVE = "fund.risk_reserve"  # kept back by the fund
FUND_OVERSPEND = "fund.overspend_borne"  # the fund's part of a community overspend
DEPOSIT_FORFEITED = "fund.deposit_forfeited"  # deposit kept after a poor assessment
BUDGET = "community.budget"  # budget granted, not yet prepaid or charged
CASH = "community.cash"  # prepaid to the community, not yet passed on to members
DEPOSIT = "community.deposit"  # quality deposit withheld
OVERSPEND_BORNE = "community.overspend_borne"  # the community's part of its overspend
OUTSIDE_CARE = "provider.outside_care"  # paid for the community's residents treated elsewhere
OUT_OF_COUNTY = "provider.out_of_county"  # paid by the agency for its residents treated outside the county
DIP = "member.dip"  # inpatient payments by DIP points
CAPITATION = "member.capitation"  # outpatient capitation
CONTRACT_FEE = "member.contract_fee"  # family-doctor contract fees
SURPLUS = "member.surplus"  # surplus retained and shared among members
