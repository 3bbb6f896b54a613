"""Request and response bodies of out-of-county care (转外就医) — to be merged into schemas.py. Money is
integer fen (a string or a float is a 422)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.text import RequestModel

from .schemas import Fen

ICD10 = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"


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
