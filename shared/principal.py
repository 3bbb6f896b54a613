"""Who is calling, as plain data: the role and the institution, community, resident or practitioner a
token binds its holder to. Plain Python on purpose: object-level checks in use cases and domains use it
without pulling in the web framework that reads it off a token (`shared.auth`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VILLAGE_DOCTOR = "village_doctor"
    FAMILY_DOCTOR = "family_doctor"
    SPECIALIST = "specialist"
    REFERRAL_COORDINATOR = "referral_coordinator"
    INSURANCE_OFFICER = "insurance_officer"
    COMMISSION_ADMIN = "commission_admin"
    RESIDENT = "resident"
    HIS_SYSTEM = "his_system"


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    institution_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    resident_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None  # jti, for revocation at the gateway
    expires_at: int | None = None
