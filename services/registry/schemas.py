"""Request and response bodies of the registry API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.text import RequestModel

from .domain.catalogues import Catalogue
from .domain.contracts import RECORDED_FLAGS
from .domain.institutions import InstitutionType, Membership, ServiceCentre, Tier
from .domain.postings import PostingKind, PostingRole, Weekday
from .domain.practitioners import Profession, Title

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
]
RegionCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{5}$")]


class In(RequestModel):
    """A request body (unknown fields refused, every string storable)."""


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Patch(In):
    version: int = Field(description="the version you read; a stale one gets 409")


class RegionIn(In):
    code: RegionCode
    name: Name
    level: Annotated[str, StringConstraints(pattern="^(province|city|county)$")]
    parent_code: RegionCode | None = None


class RegionOut(Out):
    code: str
    name: str
    level: str
    parent_code: str | None


class CommunityIn(In):
    code: Code
    name: Name
    county_code: RegionCode


class CommunityPatch(Patch):
    name: Name | None = None
    lead_institution_id: uuid.UUID | None = None


class CommunityOut(Out):
    id: uuid.UUID
    code: str
    name: str
    county_code: str
    lead_institution_id: uuid.UUID | None
    active: bool
    version: int


class DepartmentIn(In):
    code: Code
    name: Name
    kind: Annotated[str, StringConstraints(pattern="^(clinical|exam)$")] = "clinical"


class DepartmentOut(Out):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    active: bool


class InstitutionIn(In):
    code: Code
    name: Name
    tier: Tier
    kind: InstitutionType
    region_code: RegionCode
    community_id: uuid.UUID | None = None
    membership: Membership | None = None
    insurance_designated: bool = False
    service_centres: list[ServiceCentre] = Field(default_factory=list, max_length=5)
    departments: list[DepartmentIn] = Field(default_factory=list, max_length=200)


class InstitutionPatch(Patch):
    name: Name | None = None
    community_id: uuid.UUID | None = None
    membership: Membership | None = None
    insurance_designated: bool | None = None
    service_centres: list[ServiceCentre] | None = Field(default=None, max_length=5)


class InstitutionOut(Out):
    id: uuid.UUID
    code: str
    name: str
    tier: Tier
    kind: InstitutionType
    region_code: str
    community_id: uuid.UUID | None
    membership: Membership | None
    insurance_designated: bool
    service_centres: list[str]
    departments: list[DepartmentOut] = Field(default_factory=list)
    active: bool
    version: int


class PractitionerIn(In):
    licence_no: Code
    name: Name
    profession: Profession = Profession.PHYSICIAN
    title: Title = Field(
        description="on the profession's ladder: physicians village_doctor…chief, nurses nurse…chief_nurse"
    )
    specialties: list[Name] = Field(default_factory=list, max_length=20)
    general_practitioner: bool = False
    institution_id: uuid.UUID


class PractitionerPatch(Patch):
    name: Name | None = None
    profession: Profession | None = None
    title: Title | None = None
    specialties: list[Name] | None = Field(default=None, max_length=20)
    general_practitioner: bool | None = None
    institution_id: uuid.UUID | None = None


class PostingIn(In):
    host_institution_id: uuid.UUID
    kind: PostingKind = Field(
        default=PostingKind.RESIDENT,
        description="resident: stationed (驻扎式); rotating: weekly days (巡回式)",
    )
    role: PostingRole | None = Field(
        default=None,
        description="the seat filled (004 §七 1+1+1+N); default: the practitioner's profession's",
    )
    start_date: date = Field(ge=date(1900, 1, 1), le=date(2199, 12, 31))
    end_date: date = Field(ge=date(1900, 1, 1), le=date(2199, 12, 31))
    weekdays: list[Weekday] = Field(
        default_factory=list, max_length=7, description='a rotating posting\'s days, e.g. ["tue", "thu"]'
    )


class PostingOut(Out):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    host_institution_id: uuid.UUID
    kind: PostingKind
    role: PostingRole
    start_date: date = Field(ge=date(1900, 1, 1), le=date(2199, 12, 31))
    end_date: date = Field(ge=date(1900, 1, 1), le=date(2199, 12, 31))
    weekdays: list[Weekday]


class PractitionerOut(Out):
    id: uuid.UUID
    licence_no: str
    name: str
    profession: Profession
    title: Title
    specialties: list[str]
    general_practitioner: bool
    institution_id: uuid.UUID
    postings: list[PostingOut] = Field(default_factory=list)
    active: bool
    version: int


class TeamMemberIn(In):
    practitioner_id: uuid.UUID
    role: Annotated[
        str, StringConstraints(pattern="^(member|specialist|nurse|public_health|tcm|maternal_child)$")
    ]


class TeamIn(In):
    code: Code
    name: Name
    community_id: uuid.UUID
    institution_id: uuid.UUID
    lead_practitioner_id: uuid.UUID
    members: list[TeamMemberIn] = Field(default_factory=list, max_length=50)


class TeamPatch(Patch):
    name: Name | None = None
    lead_practitioner_id: uuid.UUID | None = None
    members: list[TeamMemberIn] | None = Field(default=None, max_length=50)


class TeamMemberOut(Out):
    practitioner_id: uuid.UUID
    role: str


class TeamOut(Out):
    id: uuid.UUID
    code: str
    name: str
    community_id: uuid.UUID
    institution_id: uuid.UUID
    lead_practitioner_id: uuid.UUID
    members: list[TeamMemberOut] = Field(default_factory=list)
    active: bool
    version: int


Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^1[3-9][0-9]{9}$")]


def _check_flags(flags: list[str]) -> list[str]:
    unknown = set(flags) - RECORDED_FLAGS
    if unknown:
        raise ValueError(f"unknown key-population flags {sorted(unknown)}; allowed: {sorted(RECORDED_FLAGS)}")
    return sorted(set(flags))


FLAGS_DOC = "recorded key-population flags (age groups are derived): " + ", ".join(sorted(RECORDED_FLAGS))


class ResidentIn(In):
    national_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
    name: Name
    phone: Phone | None = None
    community_id: uuid.UUID
    home_institution_id: uuid.UUID | None = None
    key_populations: list[str] = Field(default_factory=list, max_length=10, description=FLAGS_DOC)

    _flags = field_validator("key_populations")(_check_flags)


class ResidentPatch(Patch):
    name: Name | None = None
    phone: Phone | None = None
    home_institution_id: uuid.UUID | None = None
    key_populations: list[str] | None = Field(default=None, max_length=10, description=FLAGS_DOC)

    @field_validator("key_populations")
    @classmethod
    def _flags(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_flags(v)


class ResidentOut(Out):
    id: uuid.UUID
    name: str
    national_id_masked: str
    phone_masked: str | None
    gender: str
    birth_date: date
    region_code: str
    community_id: uuid.UUID
    home_institution_id: uuid.UUID | None
    key_populations: list[str]
    active: bool
    version: int


class ResidentIdentityOut(BaseModel):
    id: uuid.UUID
    national_id: str
    phone: str | None


class ContractIn(In):
    resident_id: uuid.UUID
    team_id: uuid.UUID
    start_date: date | None = None


class TerminationIn(In):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    version: int


class RenewalIn(In):
    version: int


class ContractOut(Out):
    id: uuid.UUID
    resident_id: uuid.UUID
    team_id: uuid.UUID
    community_id: uuid.UUID
    start_date: date
    end_date: date
    status: str
    key_populations: list[str]
    previous_contract_id: uuid.UUID | None
    terminated_at: datetime | None
    termination_reason: str | None
    version: int


class CatalogueEntryIn(In):
    county_code: RegionCode
    catalogue: Catalogue
    tier: Annotated[str, StringConstraints(pattern="^(township|community|village|all)$")] = "all"
    icd10: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=10)]
    name: Name


class CatalogueEntryOut(Out):
    id: uuid.UUID
    county_code: str
    catalogue: str
    tier: str
    icd10: str
    name: str
    active: bool
    version: int


class CoverageLineOut(BaseModel):
    population: str
    total: int
    signed: int
    rate: str | None
    target: str
    meets_target: bool


class KeyPopulationCoverageOut(BaseModel):
    """One key population's coverage (no target of its own: the 60 % is of all key populations)."""

    population: str
    total: int
    signed: int
    rate: str | None


class CoverageOut(BaseModel):
    scope: str
    scope_id: str
    as_of: date
    settings_version: int = Field(description="the county's registry settings the targets come from")
    lines: list[CoverageLineOut]
    key_populations: list[KeyPopulationCoverageOut] = Field(description="each key population (002 §21)")


class CatalogueSummaryOut(BaseModel):
    county_code: str
    first_in_county_diseases: int
    first_in_county_minimum: int = Field(description="the county's setting in force")
    meets_minimum: bool
    grassroots_by_tier: dict[str, int]
