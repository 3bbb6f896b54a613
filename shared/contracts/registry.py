"""What the registry publishes: one topic per aggregate, keyed by the aggregate's id, each event carrying
the aggregate's snapshot after the change (state-carried), so a consumer can upsert its read model from any
single event (newest `version` wins).

Personal data: only what a consumer needs travels. Version 2 of residents carries no name, no masked
national ID or phone, no gender, birthplace or key-population flags — the referral service needs the
birth date (age rules) and both consumers the community and home institution. Version 2 of practitioners
drops the name and licence number, version 2 of family-doctor contracts the key-population flags and the
free-text termination reason. Version-1 events (still on the topics and in outboxes) upcast to version 2.
Version 3 of practitioners adds the profession and postings of every kind (rotating, nurses, CDC staff…);
older events upcast to physicians on resident postings, all the registry could record then.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from .base import REGISTRY, Contract, EventData

SOURCE = "/registry"


def types(aggregate: str, *actions: str) -> frozenset[str]:
    return frozenset(f"registry.{aggregate}.{a}" for a in actions)


LIFECYCLE = ("created", "updated", "deactivated")


class CommunityV1(EventData):
    id: uuid.UUID
    code: str
    name: str
    county_code: str
    lead_institution_id: uuid.UUID | None
    active: bool
    version: int


class DepartmentV1(EventData):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    active: bool


class InstitutionV1(EventData):
    id: uuid.UUID
    code: str
    name: str
    tier: str
    kind: str
    region_code: str
    community_id: uuid.UUID | None
    membership: str | None
    insurance_designated: bool
    service_centres: list[str]
    departments: list[DepartmentV1]
    active: bool
    version: int


class PostingV1(EventData):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    host_institution_id: uuid.UUID
    start_date: date
    end_date: date


class PractitionerV1(EventData):
    id: uuid.UUID
    licence_no: str
    name: str
    title: str
    specialties: list[str]
    general_practitioner: bool
    institution_id: uuid.UUID
    postings: list[PostingV1]
    active: bool
    version: int


class PractitionerV2(EventData):
    """Version 1 without the practitioner's name and licence number."""

    id: uuid.UUID
    title: str
    specialties: list[str]
    general_practitioner: bool
    institution_id: uuid.UUID
    postings: list[PostingV1]
    active: bool
    version: int


def practitioner_v1_to_v2(old: PractitionerV1) -> PractitionerV2:
    return PractitionerV2.model_validate(old.model_dump(exclude={"name", "licence_no"}))


class PostingV2(EventData):
    """Version 1 plus the kind (`resident`: stationed; `rotating`: the same `weekdays` every week, mon…sun),
    and the role the posted person fills (physician, nursing, infection_control, public_health,
    quality_control, supervision: 004 §七)."""

    id: uuid.UUID
    practitioner_id: uuid.UUID
    host_institution_id: uuid.UUID
    kind: str
    role: str
    start_date: date
    end_date: date
    weekdays: list[str]


class PractitionerV3(EventData):
    """Version 2 plus the profession (physician, nurse, public_health; the title is on its ladder) and
    postings of version 2."""

    id: uuid.UUID
    profession: str
    title: str
    specialties: list[str]
    general_practitioner: bool
    institution_id: uuid.UUID
    postings: list[PostingV2]
    active: bool
    version: int


def posting_v1_to_v2(old: PostingV1) -> PostingV2:
    """Before version 2 the registry posted only physicians, stationed."""
    return PostingV2.model_validate(
        {**old.model_dump(), "kind": "resident", "role": "physician", "weekdays": []}
    )


def practitioner_v2_to_v3(old: PractitionerV2) -> PractitionerV3:
    """Before version 3 every practitioner was a physician."""
    return PractitionerV3.model_validate(
        {
            **old.model_dump(exclude={"postings"}),
            "profession": "physician",
            "postings": [posting_v1_to_v2(p) for p in old.postings],
        }
    )


class TeamMemberV1(EventData):
    practitioner_id: uuid.UUID
    role: str


class TeamV1(EventData):
    id: uuid.UUID
    code: str
    name: str
    community_id: uuid.UUID
    institution_id: uuid.UUID
    lead_practitioner_id: uuid.UUID
    members: list[TeamMemberV1]
    active: bool
    version: int


class ResidentV1(EventData):
    """As the registry API answered (it was the API's response model): name and masked identifiers."""

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


class ResidentV2(EventData):
    """What consumers need of a resident: where they belong and their birth date (age rules)."""

    id: uuid.UUID
    community_id: uuid.UUID
    home_institution_id: uuid.UUID | None
    birth_date: date
    active: bool
    version: int


def resident_v1_to_v2(old: ResidentV1) -> ResidentV2:
    return ResidentV2(
        id=old.id,
        community_id=old.community_id,
        home_institution_id=old.home_institution_id,
        birth_date=old.birth_date,
        active=old.active,
        version=old.version,
    )


class FamilyDoctorContractV1(EventData):
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


class FamilyDoctorContractV2(EventData):
    """Version 1 without the resident's key-population flags and the free-text termination reason."""

    id: uuid.UUID
    resident_id: uuid.UUID
    team_id: uuid.UUID
    community_id: uuid.UUID
    start_date: date
    end_date: date
    status: str
    previous_contract_id: uuid.UUID | None
    terminated_at: datetime | None
    version: int


def contract_v1_to_v2(old: FamilyDoctorContractV1) -> FamilyDoctorContractV2:
    return FamilyDoctorContractV2.model_validate(
        old.model_dump(exclude={"key_populations", "termination_reason"})
    )


class CatalogueEntryV1(EventData):
    id: uuid.UUID
    county_code: str
    catalogue: str
    tier: str
    icd10: str
    name: str
    active: bool
    version: int


# the current version of each: what producers write and consumers receive from `decode`
Community = CommunityV1
Department = DepartmentV1
Institution = InstitutionV1
Posting = PostingV2
Practitioner = PractitionerV3
TeamMember = TeamMemberV1
Team = TeamV1
Resident = ResidentV2
FamilyDoctorContract = FamilyDoctorContractV2
CatalogueEntry = CatalogueEntryV1

COMMUNITIES = Contract("registry.communities", types("community", *LIFECYCLE), (CommunityV1,))
INSTITUTIONS = Contract("registry.institutions", types("institution", *LIFECYCLE), (InstitutionV1,))
PRACTITIONERS = Contract(
    "registry.practitioners",
    types("practitioner", *LIFECYCLE),
    (PractitionerV1, PractitionerV2, PractitionerV3),
    (practitioner_v1_to_v2, practitioner_v2_to_v3),
)
TEAMS = Contract("registry.teams", types("team", *LIFECYCLE), (TeamV1,))
RESIDENTS = Contract(
    "registry.residents", types("resident", *LIFECYCLE), (ResidentV1, ResidentV2), (resident_v1_to_v2,)
)
CONTRACTS = Contract(
    "registry.contracts",
    types("contract", "signed", "renewed", "terminated"),
    (FamilyDoctorContractV1, FamilyDoctorContractV2),
    (contract_v1_to_v2,),
)
CATALOGUES = Contract(
    "registry.catalogues", types("catalogue_entry", "added", "removed"), (CatalogueEntryV1,)
)

# aggregate name (the middle of the event type) → its contract
AGGREGATES: dict[str, Contract] = {
    "community": COMMUNITIES,
    "institution": INSTITUTIONS,
    "practitioner": PRACTITIONERS,
    "team": TEAMS,
    "resident": RESIDENTS,
    "contract": CONTRACTS,
    "catalogue_entry": CATALOGUES,
}
TOPICS = {aggregate: c.topic for aggregate, c in AGGREGATES.items()}

REGISTRY.add(*AGGREGATES.values())
