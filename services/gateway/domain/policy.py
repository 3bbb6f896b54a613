"""Route-level policy: which roles may call which upstream paths, and which paths carry personal data
(their access is audited). The services check objects themselves; this is the first fence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.principal import Role

ALL_STAFF = frozenset(
    {
        Role.VILLAGE_DOCTOR,
        Role.FAMILY_DOCTOR,
        Role.SPECIALIST,
        Role.REFERRAL_COORDINATOR,
        Role.HIS_SYSTEM,
        Role.COMMISSION_ADMIN,
        Role.INSURANCE_OFFICER,
    }
)
EVERYONE = ALL_STAFF | {Role.RESIDENT}


@dataclass(frozen=True)
class Rule:
    service: str
    pattern: re.Pattern[str]
    roles: frozenset[Role]
    personal_data: bool = False


RULES = [
    Rule("registry", re.compile(r"^/v1/(residents|contracts)(/|$)"), EVERYONE, personal_data=True),
    Rule("registry", re.compile(r"^/v1/coverage/"), ALL_STAFF),
    Rule("registry", re.compile(r"^/v1/"), EVERYONE),
    Rule(
        "referral",
        re.compile(r"^/v1/(residents/[^/]+/referrals|referrals)(/|$)"),
        EVERYONE,
        personal_data=True,
    ),
    Rule("referral", re.compile(r"^/v1/(bookings|waitlist|holds)(/|$)"), EVERYONE, personal_data=True),
    # work lists and follow-ups carry the same referrals (resident, diagnosis, summary): audited too
    Rule(
        "referral",
        re.compile(r"^/v1/(inbox|outbox|approvals|follow-ups)(/|$)"),
        ALL_STAFF,
        personal_data=True,
    ),
    Rule(
        "referral",
        re.compile(r"^/v1/compliance"),
        frozenset({Role.COMMISSION_ADMIN, Role.REFERRAL_COORDINATOR, Role.HIS_SYSTEM}),
    ),
    Rule("referral", re.compile(r"^/v1/sessions"), EVERYONE),
    Rule("referral", re.compile(r"^/v1/"), ALL_STAFF),
    # billing: HIS systems post claims and contest charges; the agency and the commission read the money
    Rule(
        "billing",
        re.compile(r"^/v1/(claims|claims:batch)(/|$)"),
        frozenset({Role.HIS_SYSTEM, Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN}),
        personal_data=True,
    ),
    # out-of-county care records name residents and their diagnoses: the agency and the commission, audited
    Rule(
        "billing",
        re.compile(r"^/v1/out-of-county-care(:batch)?(/|$)"),
        frozenset({Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN}),
        personal_data=True,
    ),
    Rule(
        "billing",
        re.compile(r"^/v1/disputes(/|$)"),
        frozenset({Role.HIS_SYSTEM, Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN}),
    ),
    Rule("billing", re.compile(r"^/v1/"), frozenset({Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN})),
]


def match(service: str, path: str) -> Rule | None:
    """The first rule for the service whose pattern matches; None means the path is not exposed."""
    return next((r for r in RULES if r.service == service and r.pattern.match(path)), None)
