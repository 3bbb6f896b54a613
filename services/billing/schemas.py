"""Request and response bodies of the billing API: insurance years, claims, disputes and out-of-county care
(转外就医). Money is integer fen (a string or a float is a 422); rates are decimals written as strings
("0.05")."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from shared.text import RequestModel

Fen = Annotated[StrictInt, Field(ge=0, le=10**15, description="fen (0.01 yuan), a non-negative integer")]
# a tier's coefficient or weight: "1e99999" would pass a positivity check and overflow at settlement
Weight = Annotated[Decimal, Field(gt=0, le=100, max_digits=8, decimal_places=4)]
Rate = Annotated[Decimal, Field(ge=0, le=1, max_digits=6, decimal_places=4)]
ICD10 = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"


class TierRuleIn(RequestModel):
    ratio: Rate
    deductible: Fen


class CommunityCoverIn(RequestModel):
    community_id: uuid.UUID
    covered_residents: int = Field(gt=0, le=10_000_000)
    adjustment: Decimal = Field(default=Decimal(1), gt=0, le=10, max_digits=6, decimal_places=4)


class ParametersIn(RequestModel):
    individual_contribution: Fen
    fiscal_subsidy: Fen
    catastrophic_rate: Rate | None = Field(
        default=None,
        description="catastrophic insurance (大病保险) as a share of the raised total; or give "
        "catastrophic_per_person or catastrophic_amount instead (exactly one of the three)",
    )
    catastrophic_per_person: Fen | None = Field(
        default=None, description="catastrophic insurance in fen per insured person (6000 = 60 元)"
    )
    catastrophic_amount: Fen | None = Field(
        default=None, description="catastrophic insurance, the county's fen"
    )
    risk_reserve_rate: Rate = Decimal("0.05")
    risk_reserve_base: Literal["raised_total", "after_catastrophic"] = Field(
        default="raised_total",
        description="the risk reserve is risk_reserve_rate of the raised total (以筹资总额为基数, the literal "
        "reading) or of what is left after catastrophic insurance",
    )
    accumulated_balance: Fen = 0
    monthly_payout: Fen = 0
    quality_deposit_rate: Rate = Decimal("0.05")
    outpatient_pool_rate: Rate = Decimal("0.50")
    contract_fee_rate: Rate = Decimal("0.075")
    tiers: dict[str, TierRuleIn]
    unreferred_county_ratio: Rate
    dip_budget_rate: Rate | None = Field(
        default=None,
        description="inpatient care paid by DIP points as a share of each community budget; or give "
        "dip_budget_amount instead (exactly one of the two)",
    )
    dip_budget_amount: Fen | None = Field(
        default=None,
        description="the county's DIP budget in fen, split among the communities like the fund (covered "
        "residents × adjustment, largest remainder)",
    )
    dip_estimated_point_value: Decimal = Field(gt=0, max_digits=12, decimal_places=4)
    dip_tier_coefficients: dict[str, Weight] | None = Field(default=None, max_length=8)
    overspend_community_share: Rate = Decimal("0.50")
    capitation_basis: Literal["covered", "contracted"] = Field(
        default="covered",
        description="the monthly outpatient capitation is split per covered resident (by home institution) "
        "or per contracted resident (结合家庭医生签约按人头付费: contracts in force on the month's first day, "
        "by the team's institution)",
    )
    surplus_weights: dict[str, Weight] | None = Field(default=None, max_length=8)
    upward_deductible: Literal["difference", "full"] = Field(
        default="difference",
        description="referred upward: pay only the difference between the tiers' deductibles (上转补差), "
        "or the higher tier's full deductible",
    )
    downward_deductible: Literal["waived", "full"] = Field(
        default="waived",
        description="referred back down in the same episode: no new deductible (下转免起付线)",
    )
    communities: list[CommunityCoverIn] = Field(min_length=1, max_length=100)


class ParameterVersionOut(BaseModel):
    county_code: str
    year: int
    version: int
    parameters: dict[str, Any]
    created_by: str
    created_at: datetime
    in_use: bool


class BudgetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    community_id: uuid.UUID
    county_code: str
    year: int
    parameter_version: int
    covered_residents: int
    amount: int
    capitation_pool: int
    dip_budget: int
    derivation: list[dict[str, Any]]


class RunOut(BaseModel):
    """The result of a run (prepayment, month close, settlement): `posted` is false when it had
    already been done and nothing changed."""

    kind: str
    county_code: str
    year: int
    month: int | None = None
    posted: bool
    journals: list[dict[str, Any]]


class ClaimIn(RequestModel):
    claim_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    institution_id: uuid.UUID
    resident_id: uuid.UUID
    kind: Literal["outpatient", "inpatient", "day_ward"]
    service_date: date
    diagnosis_icd10: str = Field(pattern=ICD10)
    dip_group: str | None = Field(default=None, min_length=1, max_length=40)
    dip_points: Decimal | None = Field(default=None, gt=0, le=100_000, max_digits=12, decimal_places=4)
    total_cost: Fen
    eligible_cost: Fen
    referral_id: uuid.UUID | None = None


class ClaimsBatchIn(RequestModel):
    claims: list[ClaimIn] = Field(min_length=1, max_length=2000)


class ClaimOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    claim_no: str
    institution_id: uuid.UUID
    resident_id: uuid.UUID
    community_id: uuid.UUID
    tier: str
    kind: str
    service_date: date
    diagnosis_icd10: str
    grassroots_disease: bool
    dip_group: str | None
    dip_points: Decimal | None
    weighted_points: Decimal | None
    total_cost: int
    eligible_cost: int
    deductible_used: int
    ratio: Decimal
    insurance_share: int
    referral_id: uuid.UUID | None
    referred: bool
    leg: str = Field(
        default="none",
        description="up | down: the leg of an up-and-down episode the claim is on, which decides the county's "
        "reading of the deductible (upward_deductible, downward_deductible); none when unreferred",
    )
    out_of_community: bool
    pricing: str = "final"  # provisional: waiting for `awaiting_referral_id`, then priced again
    awaiting_referral_id: uuid.UUID | None = None
    duplicate: bool = False


class BatchOut(BaseModel):
    created: int
    duplicates: int
    insurance_share: int
    claims: list[ClaimOut] | None = None


class SettlementIn(RequestModel):
    scores: dict[uuid.UUID, Decimal] = Field(
        description="assessment score (0–100) per community; the quality deposit is returned in proportion"
    )
    finalize_provisional: bool = Field(
        default=False,
        description="claims still waiting for a referral that never reached billing (a mistyped id, say) "
        "are settled at their provisional price, as unreferred; without it they block the settlement",
    )


Points = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=14, decimal_places=4)]


class DisputeIn(RequestModel):
    claim_id: uuid.UUID
    claimed: Fen | None = Field(
        default=None, description="care outside the community: the charge it should be"
    )
    claimed_points: Points | None = Field(
        default=None, description="inpatient care inside the community: the weighted DIP points it should be"
    )
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(RequestModel):
    version: int
    decision: Literal["upheld", "adjusted", "rejected"]
    adjusted: Fen | None = None
    adjusted_points: Points | None = None
    note: str = Field(min_length=1, max_length=2000)


class DisputeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
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


# --- out-of-county care (转外就医) ---


class OutOfCountyCareIn(RequestModel):
    """One record of care the agency settled outside the county (as the provincial settlement system
    lists it)."""

    record_no: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="the settlement record's number, unique in the county: the same record again is a "
        "duplicate, never a second charge",
    )
    resident_id: uuid.UUID
    settled_on: date = Field(description="when the agency settled it: its month is charged and reported")
    destination_name: str = Field(min_length=1, max_length=200, description="the hospital treated at")
    destination_code: str | None = Field(
        default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$", description="its code"
    )
    destination_province: str = Field(pattern=r"^\d{2}0000$", description="行政区划代码 of the province")
    destination_city: str | None = Field(default=None, pattern=r"^\d{4}00$", description="… of the city")
    diagnosis_icd10: str = Field(pattern=ICD10)
    referred: bool = Field(description="referred out of the county (转诊备案), or went on their own")
    referral_id: uuid.UUID | None = Field(default=None, description="the referral, if there was one")
    total_cost: Fen
    fund_share: Fen = Field(description="what the fund paid: charged to the resident's community budget")

    @model_validator(mode="after")
    def _referral_means_referred(self) -> Self:
        if self.referral_id is not None and not self.referred:
            raise ValueError("referral_id is given but referred is false")
        return self


class OutOfCountyCareBatchIn(RequestModel):
    """A file of records (≤ 2,000, like a batch of claims, which keeps it under the gateway's 1 MiB body
    limit): a longer file goes in parts — each record is charged once by its number, so a part sent
    twice charges nothing more."""

    records: list[OutOfCountyCareIn] = Field(min_length=1, max_length=2000)


class OutOfCountyCareOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    record_no: str
    county_code: str
    resident_id: uuid.UUID
    community_id: uuid.UUID
    year: int
    month: int
    settled_on: date
    destination_name: str
    destination_code: str | None
    destination_province: str
    destination_city: str | None
    diagnosis_icd10: str
    referred: bool
    referral_id: uuid.UUID | None
    total_cost: int
    fund_share: int
    journal_id: int
    recorded_at: datetime
    duplicate: bool = False


class OutOfCountyBatchOut(BaseModel):
    created: int
    duplicates: int
    fund_share: int = Field(description="fen charged to community budgets by this recording")
    records: list[OutOfCountyCareOut] | None = None


class CareFigures(BaseModel):
    records: int = 0
    total_cost: int = 0
    fund_share: int = 0


class DestinationFigures(CareFigures):
    province: str
    city: str | None
    code: str | None
    name: str


class DiseaseFigures(CareFigures):
    icd10_category: str


class CommunityMonthCare(CareFigures):
    """A community's out-of-county care of one settled month, as the agency reports it (定期向医共体通报)."""

    community_id: uuid.UUID
    month: int
    referred: CareFigures
    unreferred: CareFigures
    by_destination: list[DestinationFigures]
    by_disease: list[DiseaseFigures]


class OutOfCountyReport(BaseModel):
    county_code: str
    year: int
    total: CareFigures
    communities: list[CommunityMonthCare]
