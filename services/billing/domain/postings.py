"""What each run posts to the ledger, as plain journals built from aggregates (the SQL that produces the
aggregates is set-based; nothing here loops over claims). See ledger.py for the chart of accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.errors import Conflict
from shared.money import allocate

from . import ledger as acc
from .budget import BudgetLine, CommunityBudget, Prepayment
from .ledger import Journal
from .settlement import YearEnd, contract_fees, point_value


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


def prepayment_key(community: str, year: int, month: int) -> str:
    return f"prepayment:{community}:{year}:{month:02d}"


def prepayment_journal(community: str, year: int, p: Prepayment) -> Journal:
    j = Journal(
        "prepayment", prepayment_key(community, year, p.month), f"{year}-{p.month:02d} 月度预付 / prepayment"
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


def capitation_for_month(pool: int, month: int, heads: dict[str, int]) -> dict[str, int]:
    """1/12 of the pool, split by heads per institution (largest remainder): covered residents per home
    institution, or contracts in force on the month's first day per team institution, as the year's
    `capitation_basis` says. A month with no heads pays nothing: the money stays with the community and
    counts in its year-end result."""
    monthly = allocate(pool, [1] * 12)[month - 1]
    names = sorted(n for n, count in heads.items() if count > 0)
    if not names or monthly == 0:
        return {}
    return dict(zip(names, allocate(monthly, [heads[n] for n in names]), strict=True))


@dataclass(frozen=True)
class YearEndInput:
    community: str
    budget: CommunityBudget
    dip_points: dict[str, Decimal]  # weighted points per member institution, whole year
    dip_paid: dict[str, int]  # provisional DIP already paid per institution
    contract_months: dict[str, int]  # contract-months in force in the year, per team institution
    contract_fee: int  # per contract and year
    budget_left: int  # balance of community.budget
    cash: int  # balance of community.cash before the settlement
    deposit: int  # balance of community.deposit
    score: Decimal  # assessment, 0–100
    paid_to_members: dict[str, int]  # DIP + capitation + contract fees per institution, for the tilt
    member_tiers: dict[str, str]
    surplus_weights: dict[str, Decimal]
    overspend_community_share: Decimal


def _final_dip(j: Journal, x: YearEndInput, paid_members: dict[str, int], figures: dict[str, object]) -> int:
    """The DIP budget split by the year's points, less what was paid provisionally; returns the cash it
    moves (the sum of the deltas)."""
    total_points = sum(x.dip_points.values(), Decimal(0))
    figures["dip_provisional"] = sum(x.dip_paid.values())
    if total_points <= 0:
        return 0
    names = sorted(x.dip_points)
    final = dict(zip(names, allocate(x.budget.dip_budget, [x.dip_points[n] for n in names]), strict=True))
    moved = 0
    for inst in sorted(set(final) | set(x.dip_paid)):
        delta = final.get(inst, 0) - x.dip_paid.get(inst, 0)
        j.add(acc.DIP, delta, x.community, inst)
        moved += delta
        paid_members[inst] = paid_members.get(inst, 0) + delta
    figures["dip_point_value"] = str(point_value(x.budget.dip_budget, total_points))
    figures["dip_final"] = sum(final.values())
    return moved


def _share_surplus(x: YearEndInput, surplus: int, paid_members: dict[str, int]) -> dict[str, int]:
    """Among the members, tier weight × what each was paid (by tier weight alone if nobody was paid)."""
    members = sorted(x.member_tiers)
    if not members:
        raise Conflict(
            "no-members",
            "该医共体没有在册成员单位，结余无法分配",
            f"community {x.community} has no active member institution to share its surplus",
        )
    weights = [x.surplus_weights[x.member_tiers[m]] * paid_members.get(m, 0) for m in members]
    if sum(weights) <= 0:
        weights = [x.surplus_weights[x.member_tiers[m]] for m in members]
    return dict(zip(members, allocate(surplus, weights), strict=True))


def settlement_journal(county: str, year: int, x: YearEndInput) -> tuple[Journal, dict[str, object]]:
    """Final DIP and contract fees; then, in two separate steps, spending against the budget (a surplus
    for the members, tilted to townships and villages, or an overspend shared with the fund) and the
    quality deposit returned or kept by the score, in full (`settlement.YearEnd`). The community's budget,
    cash and deposit are emptied: `community.overspend_borne` takes what the community puts in
    (`community_pays`), `fund.deposit_forfeited` the kept deposit."""
    c = x.community
    j = Journal("settlement", f"settlement:{c}:{year}", f"{year} 年终清算 / year-end settlement")
    figures: dict[str, object] = {"budget": x.budget.amount, "dip_budget": x.budget.dip_budget}
    paid_members = dict(x.paid_to_members)
    cash = x.cash - _final_dip(j, x, paid_members, figures)
    fees = contract_fees(x.contract_fee, x.contract_months)
    for inst, fen in fees.items():
        j.add(acc.CONTRACT_FEE, fen, c, inst)
        paid_members[inst] = paid_members.get(inst, 0) + fen
    cash -= sum(fees.values())
    figures |= {"contract_months": sum(x.contract_months.values()), "contract_fees": sum(fees.values())}
    # what was granted and not spent: the budget not prepaid, the cash not passed on, the deposit withheld
    left = x.budget_left + cash + x.deposit
    end = YearEnd(x.budget.amount, x.budget.amount - left, x.overspend_community_share, x.deposit, x.score)
    j.add(acc.BUDGET, -x.budget_left, c)
    j.add(acc.DEPOSIT, -x.deposit, c)
    j.add(acc.DEPOSIT_FORFEITED, end.deposit_kept)
    shares = _share_surplus(x, end.surplus_shared, paid_members) if end.surplus_shared else {}
    for inst, fen in shares.items():
        j.add(acc.SURPLUS, fen, c, inst)
    j.add(acc.FUND_OVERSPEND, -end.fund_bears)
    j.add(acc.OVERSPEND_BORNE, -end.community_pays, c)
    j.add(acc.CASH, -x.cash, c)  # the community's cash is fully accounted for: every fen has gone somewhere
    j.check()
    figures |= {
        "spent": end.spent,
        "surplus": end.surplus,
        "overspend": end.overspend,
        "community_bears": end.community_bears,
        "fund_bears": end.fund_bears,
        "deposit": x.deposit,
        "score": str(x.score),
        "deposit_returned": end.deposit_returned,
        "deposit_kept": end.deposit_kept,
        "surplus_shared": end.surplus_shared,
        "community_pays": end.community_pays,
    }
    if shares:
        figures["surplus_shares"] = {k: v for k, v in shares.items() if v}
    return j, figures
