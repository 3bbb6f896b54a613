"""An insurance year's parameters, as the insurance officer enters them, and the checks that they add up.

A version is never edited: a change is a new version, and a budget names the version it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.errors import Invalid
from shared.money import apply_rate

from .claims import TierRule

TIERS = ("village", "community", "township", "county")
ONE = Decimal(1)
MAX_FEN = 10**15  # 10 trillion yuan: any county's raised total is far below, and the ledger's bigint is safe
UPWARD_DEDUCTIBLE = ("difference", "full")
DOWNWARD_DEDUCTIBLE = ("waived", "full")
# 5 % 风险储备金 "以筹资总额为基数" (004 §十七): of the raised total (the literal reading, default) or of what is
# left after catastrophic insurance (the engine's reading before it was a parameter)
RISK_RESERVE_BASE = ("raised_total", "after_catastrophic")
# outpatient capitation "结合家庭医生签约按人头付费" (001): per covered resident (by home institution) or per
# contracted resident (by the contracting team's institution)
CAPITATION_BASIS = ("covered", "contracted")
# parameters stored as words, not rates (repository.to_domain leaves them strings)
CHOICES = frozenset({"upward_deductible", "downward_deductible", "risk_reserve_base", "capitation_basis"})
# parameters stored as whole fen (repository.to_domain takes them as they are)
AMOUNTS = (
    "accumulated_balance",
    "monthly_payout",
    "catastrophic_per_person",
    "catastrophic_amount",
    "dip_budget_amount",
)
# each quantity is given in exactly one of its forms
CATASTROPHIC_FORMS = ("catastrophic_rate", "catastrophic_per_person", "catastrophic_amount")
DIP_FORMS = ("dip_budget_rate", "dip_budget_amount")


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
    tiers: dict[str, TierRule]
    unreferred_county_ratio: Decimal  # county visit, grassroots-catalogue disease, not referred
    dip_estimated_point_value: Decimal  # fen per point, for the provisional monthly payments
    communities: tuple[CommunityCover, ...]
    # catastrophic insurance (大病保险), one of: a share of the raised total, fen per insured person
    # (6000 = 60 元), or the county's amount in fen
    catastrophic_rate: Decimal | None = None
    catastrophic_per_person: int | None = None
    catastrophic_amount: int | None = None
    # inpatient care paid by DIP points, one of: a share of each community budget, or the county's DIP
    # amount in fen, split among the communities like the fund (covered residents × adjustment)
    dip_budget_rate: Decimal | None = None
    dip_budget_amount: int | None = None
    risk_reserve_rate: Decimal = Decimal("0.05")
    risk_reserve_base: str = "raised_total"
    accumulated_balance: int = 0
    monthly_payout: int = 0
    quality_deposit_rate: Decimal = Decimal("0.05")
    outpatient_pool_rate: Decimal = Decimal("0.50")  # of individual contributions → capitation
    contract_fee_rate: Decimal = Decimal("0.075")  # of the individual contribution, per contract
    overspend_community_share: Decimal = Decimal("0.50")  # the community bears this part of an overspend
    capitation_basis: str = "covered"
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

    @property
    def catastrophic_form(self) -> str:
        """Which of the catastrophic forms the version gives (check_parameters: exactly one)."""
        return next((f for f in CATASTROPHIC_FORMS if getattr(self, f) is not None), "")

    @property
    def catastrophic_share(self) -> int:
        """Catastrophic insurance in fen, from whichever form the county gave it in."""
        if self.catastrophic_per_person is not None:
            return self.catastrophic_per_person * self.covered_total
        if self.catastrophic_amount is not None:
            return self.catastrophic_amount
        return apply_rate(self.raised_total, self.catastrophic_rate or Decimal(0))


def _rate(name: str, value: Decimal) -> None:
    if not Decimal(0) <= value <= ONE:
        raise ParameterError(f"{name} 须在 0 与 1 之间", f"{name} must be between 0 and 1")


def check_parameters(p: YearParameters) -> None:
    """Everything a version must satisfy before it can be stored."""
    amounts = [p.individual_contribution, p.fiscal_subsidy, *(getattr(p, a) for a in AMOUNTS)]
    if min(a for a in amounts if a is not None) < 0:
        raise ParameterError("金额不能为负", "money cannot be negative")
    _one_form(p, CATASTROPHIC_FORMS, "大病保险资金")
    _one_form(p, DIP_FORMS, "DIP 预算")
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
        if getattr(p, name) is not None:
            _rate(name, getattr(p, name))
    _choice("risk_reserve_base", p.risk_reserve_base, RISK_RESERVE_BASE)
    _choice("capitation_basis", p.capitation_basis, CAPITATION_BASIS)
    _check_communities(p)
    if p.raised_total > MAX_FEN:
        raise ParameterError("筹资总额超出可记账范围", f"the raised total exceeds {MAX_FEN} fen")
    if p.catastrophic_share > p.raised_total:
        raise ParameterError(
            "大病保险资金超过筹资总额", "catastrophic insurance exceeds the raised total it is taken from"
        )
    # the reserve at its full rate, as if not waived: a version must work in the year it stops being waived
    base = p.raised_total if p.risk_reserve_base == "raised_total" else p.raised_total - p.catastrophic_share
    if p.catastrophic_share + apply_rate(base, p.risk_reserve_rate) >= p.raised_total:
        raise ParameterError(
            "大病保险与风险储备金合计须低于筹资总额",
            "catastrophic insurance and risk reserve together must stay below the raised total",
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


def _check_communities(p: YearParameters) -> None:
    if not p.communities:
        raise ParameterError("至少需要一个医共体", "at least one community is needed")
    ids = [c.community_id for c in p.communities]
    if len(set(ids)) != len(ids):
        raise ParameterError("医共体重复", "a community is listed twice")
    if any(c.covered_residents <= 0 or c.adjustment <= 0 for c in p.communities):
        raise ParameterError(
            "每个医共体的参保人数与调整系数须为正", "covered residents and adjustment must be positive"
        )


def _one_form(p: YearParameters, forms: tuple[str, ...], zh: str) -> None:
    given = [f for f in forms if getattr(p, f) is not None]
    if len(given) != 1:
        raise ParameterError(
            f"{zh}须且只能以一种方式给出（{' / '.join(forms)}），现给出 {len(given)} 种",
            f"give exactly one of {', '.join(forms)} (given: {', '.join(given) or 'none'})",
        )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ParameterError(f"{name} 须为 {'|'.join(allowed)}", f"{name} must be one of {'|'.join(allowed)}")
