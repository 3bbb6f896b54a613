"""An insurance year's parameters, as the insurance officer enters them, and the checks that they add up.

A version is never edited: a change is a new version, and a budget names the version it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.errors import Invalid

from .claims import TierRule

TIERS = ("village", "community", "township", "county")
ONE = Decimal(1)
UPWARD_DEDUCTIBLE = ("difference", "full")
DOWNWARD_DEDUCTIBLE = ("waived", "full")
# parameters stored as words, not rates (repository.to_domain leaves them strings)
CHOICES = frozenset({"upward_deductible", "downward_deductible"})


class ParameterError(Invalid):
    """Parameters that do not add up; the message says which and why (zh, en). One code for all of them:
    clients branch on 'the parameters are wrong', the text says what to fix."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__("parameters-do-not-add-up", zh, en)


@dataclass(frozen=True)
class CommunityCover:
    community_id: str
    covered_residents: int  # insured residents the community covers this year
    adjustment: Decimal = ONE  # history and growth (1 = none)


@dataclass(frozen=True)
class YearParameters:
    individual_contribution: int  # fen per insured person (个人缴费)
    fiscal_subsidy: int  # fen per insured person (财政补助)
    catastrophic_rate: Decimal  # share of the raised total that buys catastrophic insurance
    tiers: dict[str, TierRule]
    unreferred_county_ratio: Decimal  # county visit, grassroots-catalogue disease, not referred
    dip_budget_rate: Decimal  # share of a community budget paid to inpatient care by DIP points
    dip_estimated_point_value: Decimal  # fen per point, for the provisional monthly payments
    communities: tuple[CommunityCover, ...]
    risk_reserve_rate: Decimal = Decimal("0.05")
    accumulated_balance: int = 0
    monthly_payout: int = 0
    quality_deposit_rate: Decimal = Decimal("0.05")
    outpatient_pool_rate: Decimal = Decimal("0.50")  # of individual contributions → capitation
    contract_fee_rate: Decimal = Decimal("0.075")  # of the individual contribution, per contract
    overspend_community_share: Decimal = Decimal("0.50")  # the community bears this part of an overspend
    # one deductible per referral episode (双向转诊…只计算一次起付线), as the county reads it:
    # going up, "difference" (上转补差: only what the higher tier's deductible exceeds what was met) or
    # "full" (the higher tier's whole deductible again); coming down, "waived" (下转免起付线) or "full"
    upward_deductible: str = "difference"
    downward_deductible: str = "waived"
    dip_tier_coefficients: dict[str, Decimal] = field(
        default_factory=lambda: {
            "county": ONE,
            "township": Decimal("0.85"),
            "community": Decimal("0.85"),
            "village": Decimal("0.70"),
        }
    )
    surplus_weights: dict[str, Decimal] = field(
        default_factory=lambda: {
            "county": ONE,
            "township": Decimal("1.5"),
            "community": Decimal("1.5"),
            "village": Decimal(2),
        }
    )

    @property
    def covered_total(self) -> int:
        return sum(c.covered_residents for c in self.communities)

    @property
    def raised_total(self) -> int:
        return self.covered_total * (self.individual_contribution + self.fiscal_subsidy)


def _rate(name: str, value: Decimal) -> None:
    if not Decimal(0) <= value <= ONE:
        raise ParameterError(f"{name} 须在 0 与 1 之间", f"{name} must be between 0 and 1")


def check_parameters(p: YearParameters) -> None:
    """Everything a version must satisfy before it can be stored."""
    if min(p.individual_contribution, p.fiscal_subsidy, p.accumulated_balance, p.monthly_payout) < 0:
        raise ParameterError("金额不能为负", "money cannot be negative")
    for name in (
        "catastrophic_rate",
        "risk_reserve_rate",
        "quality_deposit_rate",
        "outpatient_pool_rate",
        "contract_fee_rate",
        "overspend_community_share",
        "dip_budget_rate",
        "unreferred_county_ratio",
    ):
        _rate(name, getattr(p, name))
    if p.catastrophic_rate + p.risk_reserve_rate >= ONE:
        raise ParameterError(
            "大病保险与风险金合计须低于筹资总额的 100%",
            "catastrophic share and risk reserve together must stay below 100 % of the raised total",
        )
    if p.outpatient_pool_rate + p.contract_fee_rate > ONE:
        raise ParameterError(
            "门诊统筹与签约服务费合计超过个人缴费的 100%",
            "outpatient pool and contract fee together exceed 100 % of the individual contribution",
        )
    if p.upward_deductible not in UPWARD_DEDUCTIBLE or p.downward_deductible not in DOWNWARD_DEDUCTIBLE:
        raise ParameterError(
            "转诊起付线规则须为 upward_deductible ∈ difference|full，downward_deductible ∈ waived|full",
            "upward_deductible must be difference|full and downward_deductible waived|full",
        )
    missing = [t for t in TIERS if t not in p.tiers]
    if missing:
        raise ParameterError(
            f"缺少层级报销规则：{missing}", f"reimbursement rules missing for tiers {missing}"
        )
    for tier, rule in p.tiers.items():
        _rate(f"tiers.{tier}.ratio", rule.ratio)
        if rule.deductible < 0:
            raise ParameterError("起付线不能为负", "a deductible cannot be negative")
    if p.unreferred_county_ratio > p.tiers["county"].ratio:
        raise ParameterError(
            "未经转诊的县级基层病种报销比例不能高于县级比例",
            "the unreferred county ratio cannot exceed the county ratio",
        )
    if p.dip_estimated_point_value <= 0:
        raise ParameterError("DIP 预估点值须为正", "the estimated DIP point value must be positive")
    for table_name, table in (
        ("dip_tier_coefficients", p.dip_tier_coefficients),
        ("surplus_weights", p.surplus_weights),
    ):
        if any(t not in table or table[t] <= 0 for t in TIERS):
            raise ParameterError(
                f"{table_name} 须为每个层级给出正数", f"{table_name} needs a positive value per tier"
            )
    if not p.communities:
        raise ParameterError("至少需要一个医共体", "at least one community is needed")
    ids = [c.community_id for c in p.communities]
    if len(set(ids)) != len(ids):
        raise ParameterError("医共体重复", "a community is listed twice")
    if any(c.covered_residents <= 0 or c.adjustment <= 0 for c in p.communities):
        raise ParameterError(
            "每个医共体的参保人数与调整系数须为正", "covered residents and adjustment must be positive"
        )
