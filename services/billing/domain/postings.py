"""What each run posts to the ledger, as plain journals built from aggregates (the SQL that produces the
aggregates is set-based; nothing here loops over claims). See ledger.py for the chart of accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.money import allocate

from . import ledger as acc
from .budget import BudgetLine, CommunityBudget, Prepayment
from .ledger import Journal
from .settlement import YearEnd, deposit_returned, point_value


def budget_journal(
    county: str, year: int, county_lines: list[BudgetLine], budgets: list[CommunityBudget]
) -> Journal:
    """Raised total in; catastrophic share and risk reserve out; the rest earmarked per community."""
    lines = {x.label: x.fen for x in county_lines}
    j = Journal("budget", f"budget:{county}:{year}", f"{year} 年度医共体预算 / budgets {county} {year}")
    j.add(acc.CONTRIBUTIONS, -lines["raised_total"])
    j.add(acc.CATASTROPHIC, -lines["catastrophic_share"])
    j.add(acc.RISK_RESERVE, -lines["risk_reserve"])
    for b in budgets:
        j.add(acc.BUDGET, b.amount, community_id=b.community_id)
    j.check()
    return j


def prepayment_journal(community: str, year: int, p: Prepayment) -> Journal:
    j = Journal(
        "prepayment",
        f"prepayment:{community}:{year}:{p.month:02d}",
        f"{year}-{p.month:02d} 月度预付 / prepayment",
    )
    j.add(acc.BUDGET, -p.gross, community_id=community)
    j.add(acc.CASH, p.paid, community_id=community)
    j.add(acc.DEPOSIT, p.deposit, community_id=community)
    j.check()
    return j


@dataclass
class MonthCharges:
    """A community's month, aggregated by institution (fen)."""

    outside_care: dict[str, int] = field(default_factory=dict)  # charged to the budget
    dip_provisional: dict[str, int] = field(default_factory=dict)  # points × estimated value
    capitation: dict[str, int] = field(default_factory=dict)


def month_close_journal(community: str, year: int, month: int, c: MonthCharges) -> Journal:
    j = Journal(
        "month_close", f"month:{community}:{year}:{month:02d}", f"{year}-{month:02d} 月结 / month close"
    )
    for inst, fen in sorted(c.outside_care.items()):
        j.add(acc.OUTSIDE_CARE, fen, community, inst)
    j.add(acc.BUDGET, -sum(c.outside_care.values()), community)
    for account, parts in ((acc.DIP, c.dip_provisional), (acc.CAPITATION, c.capitation)):
        for inst, fen in sorted(parts.items()):
            j.add(account, fen, community, inst)
    j.add(acc.CASH, -sum(c.dip_provisional.values()) - sum(c.capitation.values()), community)
    j.check()
    return j


def capitation_for_month(pool: int, month: int, home_counts: dict[str, int]) -> dict[str, int]:
    """1/12 of the pool, split by covered residents per home institution (largest remainder)."""
    monthly = allocate(pool, [1] * 12)[month - 1]
    names = sorted(home_counts)
    if not names or monthly == 0:
        return {}
    return dict(zip(names, allocate(monthly, [home_counts[n] for n in names]), strict=True))


@dataclass(frozen=True)
class YearEndInput:
    community: str
    budget: CommunityBudget
    dip_points: dict[str, Decimal]  # weighted points per member institution, whole year
    dip_paid: dict[str, int]  # provisional DIP already paid per institution
    contracts: dict[str, int]  # active contracts per team institution
    contract_fee: int  # per contract
    budget_left: int  # balance of community.budget
    cash: int  # balance of community.cash before the settlement
    deposit: int  # balance of community.deposit
    score: Decimal  # assessment, 0–100
    paid_to_members: dict[str, int]  # DIP + capitation + contract fees per institution, for the tilt
    member_tiers: dict[str, str]
    surplus_weights: dict[str, Decimal]
    overspend_community_share: Decimal


def settlement_journal(county: str, year: int, x: YearEndInput) -> tuple[Journal, dict[str, object]]:
    """Final DIP, contract fees, the budget remainder, the deposit by score, then the result: a surplus
    shared among members (tilted to townships and villages) or an overspend shared with the fund."""
    c = x.community
    j = Journal("settlement", f"settlement:{c}:{year}", f"{year} 年终清算 / year-end settlement")
    figures: dict[str, object] = {"budget": x.budget.amount, "dip_budget": x.budget.dip_budget}
    cash = x.cash
    # final DIP: the DIP budget over the year's points; payments are the budget split by points
    total_points = sum(x.dip_points.values(), Decimal(0))
    paid_members = dict(x.paid_to_members)
    if total_points > 0:
        names = sorted(x.dip_points)
        final = dict(zip(names, allocate(x.budget.dip_budget, [x.dip_points[n] for n in names]), strict=True))
        for inst in sorted(set(final) | set(x.dip_paid)):
            delta = final.get(inst, 0) - x.dip_paid.get(inst, 0)
            j.add(acc.DIP, delta, c, inst)
            cash -= delta
            paid_members[inst] = paid_members.get(inst, 0) + delta
        figures["dip_point_value"] = str(point_value(x.budget.dip_budget, total_points))
        figures["dip_final"] = sum(final.values())
    figures["dip_provisional"] = sum(x.dip_paid.values())
    fees = {inst: n * x.contract_fee for inst, n in sorted(x.contracts.items())}
    for inst, fen in fees.items():
        j.add(acc.CONTRACT_FEE, fen, c, inst)
        paid_members[inst] = paid_members.get(inst, 0) + fen
    cash -= sum(fees.values())
    figures["contract_fees"] = sum(fees.values())
    j.add(acc.BUDGET, -x.budget_left, c)
    cash += x.budget_left
    returned = deposit_returned(x.deposit, x.score)
    j.add(acc.DEPOSIT, -x.deposit, c)
    j.add(acc.DEPOSIT_FORFEITED, x.deposit - returned)
    cash += returned
    figures |= {"deposit": x.deposit, "deposit_returned": returned, "score": str(x.score)}
    if cash >= 0:
        figures |= {"surplus": cash, "overspend": 0}
        if cash:
            members = sorted(x.member_tiers)
            weights = [x.surplus_weights[x.member_tiers[m]] * paid_members.get(m, 0) for m in members]
            if sum(weights) == 0:
                weights = [x.surplus_weights[x.member_tiers[m]] for m in members]
            shares = dict(zip(members, allocate(cash, weights), strict=True))
            for inst, fen in shares.items():
                j.add(acc.SURPLUS, fen, c, inst)
            figures["surplus_shares"] = {k: v for k, v in shares.items() if v}
    else:
        outcome = YearEnd(budget=0, spent=-cash, overspend_community_share=x.overspend_community_share)
        figures |= {
            "surplus": 0,
            "overspend": outcome.overspend,
            "community_bears": outcome.community_bears,
            "fund_bears": outcome.fund_bears,
        }
        j.add(acc.OVERSPEND_BORNE, -outcome.community_bears, c)
        j.add(acc.FUND_OVERSPEND, -outcome.fund_bears)
    j.add(acc.CASH, -x.cash, c)  # the community's cash is fully accounted for: every fen has gone somewhere
    j.check()
    return j, figures
