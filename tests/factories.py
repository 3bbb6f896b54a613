"""Test data in one line: each factory inserts one valid row (through the service's models, flushed, no
events raised) with defaults that satisfy the rules, and takes as keywords only what a test is about;
any other column can be overridden by name (`**fields`). What a row needs and is not given is made too
(an institution without a community gets one), so a test states only what matters:

    reg = RegistryRows(session)
    resident = await reg.resident(birth=date(1950, 5, 1))  # a community, its region and county too

One builder per service, bound to a session (the arranging session of a tests/usecases fixture, or any
other): `RegistryRows` (the registry's own tables), `ReferralRows` (the referral service's read model of
the registry, rm_*, and sessions of slots) and `BillingRows` (billing's read model, rm_*, and an
insurance year with its parameters). Codes, national IDs and ids differ on every call.
`referral_county()` and `billing_county()` build the small county most tests start from.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import models as bm
from services.billing.schemas import ParametersIn
from services.billing.usecases.years import set_parameters
from services.referral import models as fm
from services.registry import models as rm
from services.registry.domain.contracts import contract_term, key_populations
from services.registry.domain.national_id import make_national_id
from shared.pii import PiiVault, mask_national_id, mask_phone, resident_owner
from shared.principal import Principal, Role

from .conftest import NOW, TEST_PII_KEY

COUNTY, PROVINCE = "411081", "410000"  # 禹州市, 河南省: real codes (a national ID's region must be one)
TODAY = NOW.date()  # the day the tests' clock stands on (tests/conftest.py NOW)
VAULT = PiiVault(TEST_PII_KEY)  # the registry's vault with the test key, for residents and their use cases
TIER_KIND = {
    "county": "general",
    "township": "township_centre",
    "community": "community_centre",
    "village": "village_clinic",
}
POOLS = ("priority", "family_doctor", "public")  # the order publish_session numbers slots in

LIVE: dict[str, Any] = {"active": True, "version": 1}  # a read-model row as its first event leaves it
_serial = itertools.count(1)
Row = TypeVar("Row")


def unique(prefix: str) -> str:
    """A code no other call returns (registry codes: letters, digits, `_.-`, at most 40)."""
    return f"{prefix}{next(_serial)}-{uuid.uuid4().hex[:8]}"


def national_id(birth: date = date(1950, 5, 1), region: str = COUNTY) -> str:
    """A valid GB 11643 number, different on every call (the order code counts up)."""
    return make_national_id(region, birth, next(_serial) % 1000)


async def _add(s: AsyncSession, row: Row, refresh: bool = False) -> Row:
    s.add(row)
    await s.flush()
    if refresh:  # server defaults (created_at, updated_at) loaded now: no lazy load later in async code
        await s.refresh(row)
    return row


class _Community(Protocol):
    lead_institution_id: uuid.UUID | None


def _membership(community: _Community | None, tier: str) -> str | None:
    """The first county hospital of a community leads it (one lead per community); the rest are tight."""
    if community is None:
        return None
    return "lead" if tier == "county" and community.lead_institution_id is None else "tight"


# ---------------------------------------------------------------- registry


class RegistryRows:
    """Rows of the registry's own tables."""

    def __init__(self, s: AsyncSession, vault: PiiVault = VAULT) -> None:
        self.s, self.vault = s, vault

    async def region(self, code: str = COUNTY, level: str = "county", **fields: Any) -> rm.Region:
        """The region, or the one already there (regions are shared reference data, keyed by code)."""
        if (found := await self.s.get(rm.Region, code)) is not None:
            return found
        parent = fields.pop("parent_code", None)
        if parent is None and code == COUNTY:
            parent = (await self.region(PROVINCE, "province", name="河南省")).code
        name = fields.pop("name", "禹州市" if code == COUNTY else f"区划{code}")
        return await _add(self.s, rm.Region(code=code, name=name, level=level, parent_code=parent, **fields))

    async def community(self, county: str = COUNTY, **fields: Any) -> rm.Community:
        await self.region(county)
        values = {"code": unique("C"), "name": "人民医院医共体", "county_code": county, **fields}
        return await _add(self.s, rm.Community(**values), refresh=True)

    async def institution(
        self,
        community: rm.Community | None = None,
        tier: str = "county",
        *,
        standalone: bool = False,
        departments: Iterable[str] = ("NEI",),
        **fields: Any,
    ) -> rm.Institution:
        """A member of `community` (a new one if not given; none if `standalone`): its first county
        hospital is its lead (and the community's lead_institution_id), everything else a tight member.
        `departments`: clinical department codes."""
        if community is None and not standalone:
            community = await self.community()
        values: dict[str, Any] = {
            "code": unique("I"),
            "name": f"{tier}机构",
            "tier": tier,
            "kind": TIER_KIND[tier],
            "region_code": community.county_code if community else COUNTY,
            "community_id": community.id if community else None,
            "membership": _membership(community, tier),
            **fields,
        }
        await self.region(values["region_code"])
        inst = await _add(self.s, rm.Institution(**values), refresh=True)
        for code in departments:
            self.s.add(rm.Department(institution_id=inst.id, code=code, name=code, kind="clinical"))
        if community is not None and inst.membership == "lead" and community.lead_institution_id is None:
            community.lead_institution_id = inst.id
            await self.s.flush()
            await self.s.refresh(community)
        await self.s.flush()
        return inst

    async def practitioner(
        self, institution: rm.Institution | None = None, title: str = "attending", **fields: Any
    ) -> rm.Practitioner:
        institution = institution or await self.institution(tier="township")
        values = {
            "licence_no": unique("P"),
            "name": "张医生",
            "title": title,
            "institution_id": institution.id,
            **fields,
        }
        return await _add(self.s, rm.Practitioner(**values), refresh=True)

    async def team(
        self,
        community: rm.Community | None = None,
        institution: rm.Institution | None = None,
        lead: rm.Practitioner | None = None,
        members: Mapping[rm.Practitioner, str] | Iterable[rm.Practitioner] = (),
        **fields: Any,
    ) -> rm.Team:
        """A family-doctor team at a township centre of `community`, led by a general practitioner there;
        `members`: practitioners (role "member") or practitioner → role."""
        community = community or await self.community()
        institution = institution or await self.institution(community, "township")
        lead = lead or await self.practitioner(institution, general_practitioner=True)
        roles = dict(members) if isinstance(members, Mapping) else dict.fromkeys(members, "member")
        values = {
            "code": unique("T"),
            "name": "家庭医生团队",
            "community_id": community.id,
            "institution_id": institution.id,
            "lead_practitioner_id": lead.id,
            **fields,
        }
        team = await _add(self.s, rm.Team(**values), refresh=True)
        self.s.add(rm.TeamMember(team_id=team.id, practitioner_id=lead.id, role="lead"))
        self.s.add_all(rm.TeamMember(team_id=team.id, practitioner_id=p.id, role=r) for p, r in roles.items())
        await self.s.flush()
        return team

    async def resident(
        self,
        community: rm.Community | None = None,
        *,
        birth: date = date(1950, 5, 1),
        nid: str | None = None,
        phone: str | None = None,
        home: rm.Institution | None = None,
        **fields: Any,
    ) -> rm.Resident:
        """Sealed, hashed and masked as `create_resident` stores them (with `vault`)."""
        community = community or await self.community()
        number = nid or national_id(birth)
        rid = rm.new_id()
        values: dict[str, Any] = {
            "id": rid,
            "national_id_hash": self.vault.lookup_hash(number),
            "national_id_sealed": self.vault.seal(number, resident_owner(rid, "national_id")),
            "national_id_masked": mask_national_id(number),
            "phone_hash": self.vault.lookup_hash(phone) if phone else None,
            "phone_sealed": self.vault.seal(phone, resident_owner(rid, "phone")) if phone else None,
            "phone_masked": mask_phone(phone) if phone else None,
            "name": "赵居民",
            "gender": "male" if int(number[16]) % 2 else "female",
            "birth_date": date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
            "region_code": number[:6],
            "community_id": community.id,
            "home_institution_id": home.id if home else None,
            "key_populations": [],
            **fields,
        }
        return await _add(self.s, rm.Resident(**values), refresh=True)

    async def contract(
        self,
        resident: rm.Resident | None = None,
        team: rm.Team | None = None,
        start: date = TODAY,
        **fields: Any,
    ) -> rm.Contract:
        """An active one-year contract of `resident` with `team` (both in one community)."""
        if resident is None:
            community = await self.s.get(rm.Community, team.community_id) if team else None
            resident = await self.resident(community)
        team = team or await self.team(await self.s.get(rm.Community, resident.community_id))
        values = {
            "resident_id": resident.id,
            "team_id": team.id,
            "community_id": team.community_id,
            "start_date": start,
            "end_date": contract_term(start).end,
            "status": "active",
            "key_populations": sorted(
                key_populations(resident.birth_date, set(resident.key_populations), start)
            ),
            **fields,
        }
        return await _add(self.s, rm.Contract(**values), refresh=True)


# ---------------------------------------------------------------- referral (its read model and slots)


@dataclass
class ReferralCounty:
    """One community of county 411081 in the referral service's read model: a lead county hospital
    (departments NEI and CT), a township centre and a village clinic; a village doctor, a general
    practitioner and a hospital specialist; the GP's team (the village doctor in it) and an elderly
    resident of the village contracted with it."""

    community: fm.RmCommunity
    hospital: fm.RmInstitution
    township: fm.RmInstitution
    village: fm.RmInstitution
    village_doctor: fm.RmPractitioner
    gp: fm.RmPractitioner
    specialist: fm.RmPractitioner
    team: fm.RmTeam
    resident: fm.RmResident
    contract: fm.RmContract


class ReferralRows:
    """The referral service's rm_* rows (as registry events would have left them) and slot sessions."""

    def __init__(self, s: AsyncSession) -> None:
        self.s = s

    async def community(self, county: str = COUNTY, **fields: Any) -> fm.RmCommunity:
        values = {"id": uuid.uuid4(), **LIVE, "county_code": county, "lead_institution_id": None, **fields}
        return await _add(self.s, fm.RmCommunity(**values))

    async def institution(
        self,
        community: fm.RmCommunity | None = None,
        tier: str = "county",
        *,
        standalone: bool = False,
        departments: Iterable[str] = ("NEI",),
        **fields: Any,
    ) -> fm.RmInstitution:
        """As `RegistryRows.institution`: the first county hospital is its community's lead."""
        if community is None and not standalone:
            community = await self.community()
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            **LIVE,
            "name": f"{tier}机构",
            "tier": tier,
            "kind": TIER_KIND[tier],
            "region_code": community.county_code if community else COUNTY,
            "community_id": community.id if community else None,
            "membership": _membership(community, tier),
            "departments": list(departments),
            **fields,
        }
        inst = await _add(self.s, fm.RmInstitution(**values))
        if community is not None and inst.membership == "lead" and community.lead_institution_id is None:
            community.lead_institution_id = inst.id
            await self.s.flush()
        return inst

    async def practitioner(
        self, institution: fm.RmInstitution | None = None, title: str = "attending", **fields: Any
    ) -> fm.RmPractitioner:
        institution = institution or await self.institution(tier="township")
        values = {"id": uuid.uuid4(), **LIVE, "institution_id": institution.id, "title": title, **fields}
        return await _add(self.s, fm.RmPractitioner(**values))

    async def team(
        self,
        institution: fm.RmInstitution | None = None,
        members: Iterable[fm.RmPractitioner] = (),
        **fields: Any,
    ) -> fm.RmTeam:
        """A team at `institution` (a new township centre if not given), in its community; `members`
        include the lead."""
        institution = institution or await self.institution(tier="township")
        assert institution.community_id is not None, "a team's institution belongs to a community"
        values = {
            "id": uuid.uuid4(),
            **LIVE,
            "community_id": institution.community_id,
            "institution_id": institution.id,
            "members": [p.id for p in members],
            **fields,
        }
        return await _add(self.s, fm.RmTeam(**values))

    async def resident(
        self,
        community: fm.RmCommunity | None = None,
        home: fm.RmInstitution | None = None,
        birth: date = date(1950, 5, 1),
        **fields: Any,
    ) -> fm.RmResident:
        community = community or await self.community()
        values = {
            "id": uuid.uuid4(),
            **LIVE,
            "community_id": community.id,
            "home_institution_id": home.id if home else None,
            "birth_date": birth,
            **fields,
        }
        return await _add(self.s, fm.RmResident(**values))

    async def contract(
        self, resident: fm.RmResident, team: fm.RmTeam, start: date = TODAY, **fields: Any
    ) -> fm.RmContract:
        values = {
            "id": uuid.uuid4(),
            "version": 1,
            "resident_id": resident.id,
            "team_id": team.id,
            "status": "active",
            "start_date": start,
            "end_date": contract_term(start).end,
            **fields,
        }
        return await _add(self.s, fm.RmContract(**values))

    async def catalogue_entry(
        self,
        icd10: str,
        catalogue: str = "grassroots",
        tier: str = "all",
        county: str = COUNTY,
        **fields: Any,
    ) -> fm.RmCatalogueEntry:
        """`catalogue`: grassroots (基层首诊) or first_in_county; `tier`: the tier it binds, or "all"."""
        values = {
            "id": uuid.uuid4(),
            **LIVE,
            "county_code": county,
            "catalogue": catalogue,
            "tier": tier,
            "icd10": icd10,
            **fields,
        }
        return await _add(self.s, fm.RmCatalogueEntry(**values))

    async def clinic_session(
        self,
        institution: fm.RmInstitution,
        pools: Mapping[str, int] | None = None,
        starts_at: datetime | None = None,
        department_code: str = "NEI",
        **fields: Any,
    ) -> fm.Session:
        """An open session of `institution`'s department with free slots per pool (default: one public
        slot), starting two days after NOW (every booking window open), four hours long."""
        pools = {"public": 1} if pools is None else pools
        starts_at = starts_at or NOW + timedelta(days=2)
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "institution_id": institution.id,
            "department_code": department_code,
            "resource_type": "specialist",
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(hours=4),
            "capacity": sum(pools.values()),
            "family_doctor_share": "0.40",
            "status": "open",
            "published_by": "his@factory",
            "created_at": NOW,
            **fields,
        }
        session = await _add(self.s, fm.Session(**values))
        assert set(pools) <= set(POOLS), f"pools are {POOLS}"
        kinds = [p for p in POOLS for _ in range(pools.get(p, 0))]
        if kinds:
            await self.s.execute(
                sa.insert(fm.Slot),
                [
                    {
                        "id": uuid.uuid4(),
                        "session_id": session.id,
                        "slot_no": n,
                        "pool": p,
                        "published_pool": p,
                        "status": "free",
                    }
                    for n, p in enumerate(kinds, start=1)
                ],
            )
        return session

    async def county(self) -> ReferralCounty:
        community = await self.community()
        hospital = await self.institution(community, "county", departments=("NEI", "CT"))
        township = await self.institution(community, "township", departments=("QK",))
        village = await self.institution(community, "village", departments=())
        village_doctor = await self.practitioner(village, "village_doctor")
        gp = await self.practitioner(township, "attending")
        specialist = await self.practitioner(hospital, "chief")
        team = await self.team(township, [gp, village_doctor])
        resident = await self.resident(community, home=village)
        contract = await self.contract(resident, team)
        return ReferralCounty(
            community, hospital, township, village, village_doctor, gp, specialist, team, resident, contract
        )


async def referral_county(s: AsyncSession) -> ReferralCounty:
    return await ReferralRows(s).county()


# ---------------------------------------------------------------- billing (its read model and years)

OFFICER = Principal(subject="officer@factory", role=Role.INSURANCE_OFFICER)
TIER_RULES = {
    "village": {"ratio": "0.90", "deductible": 10_000},
    "community": {"ratio": "0.85", "deductible": 20_000},
    "township": {"ratio": "0.85", "deductible": 20_000},
    "county": {"ratio": "0.70", "deductible": 60_000},
}


@dataclass
class BillingCounty:
    """One community of county 411081 in billing's read model: its lead county hospital, a township
    centre, a resident of the community, and the insurance year `year` budgeted with `TIER_RULES`."""

    community: bm.RmCommunity
    hospital: bm.RmInstitution
    township: bm.RmInstitution
    resident: bm.RmResident
    year: bm.InsuranceYear


def parameters_body(covered: Mapping[uuid.UUID, int], **overrides: Any) -> ParametersIn:
    """An insurance year's parameters as an officer sends them: the tests' defaults, the covered residents
    of each community, `overrides` (any field of `ParametersIn`)."""
    return ParametersIn.model_validate(
        {
            "individual_contribution": 40_000,
            "fiscal_subsidy": 60_000,
            "catastrophic_rate": "0.08",
            "tiers": TIER_RULES,
            "unreferred_county_ratio": "0.50",
            "dip_budget_rate": "0.40",
            "dip_estimated_point_value": "100",
            "communities": [{"community_id": c, "covered_residents": n} for c, n in covered.items()],
            **overrides,
        }
    )


class BillingRows:
    """Billing's rm_* rows (as registry and referral events would have left them) and insurance years."""

    def __init__(self, s: AsyncSession) -> None:
        self.s = s

    async def community(self, county: str = COUNTY, **fields: Any) -> bm.RmCommunity:
        values = {"id": uuid.uuid4(), **LIVE, "county_code": county, "lead_institution_id": None, **fields}
        return await _add(self.s, bm.RmCommunity(**values))

    async def institution(
        self, community: bm.RmCommunity | None = None, tier: str = "county", **fields: Any
    ) -> bm.RmInstitution:
        community = community or await self.community()
        values = {
            "id": uuid.uuid4(),
            **LIVE,
            "tier": tier,
            "community_id": community.id,
            "membership": _membership(community, tier),
            **fields,
        }
        inst = await _add(self.s, bm.RmInstitution(**values))
        if inst.membership == "lead" and community.lead_institution_id is None:
            community.lead_institution_id = inst.id
            await self.s.flush()
        return inst

    async def resident(
        self, community: bm.RmCommunity | None = None, home: bm.RmInstitution | None = None, **fields: Any
    ) -> bm.RmResident:
        community = community or await self.community()
        values = {
            "id": uuid.uuid4(),
            **LIVE,
            "community_id": community.id,
            "home_institution_id": home.id if home else None,
            **fields,
        }
        return await _add(self.s, bm.RmResident(**values))

    async def referral(
        self,
        resident: bm.RmResident,
        to: bm.RmInstitution,
        status: str = "accepted",
        from_institution: bm.RmInstitution | None = None,
        **fields: Any,
    ) -> bm.RmReferral:
        """A referral of `resident` to `to`, as the referral service's last event left it."""
        values = {
            "id": uuid.uuid4(),
            "version": 1,
            "resident_id": resident.id,
            "status": status,
            "from_institution_id": from_institution.id if from_institution else uuid.uuid4(),
            "to_institution_id": to.id,
            "replaces_referral_id": None,
            **fields,
        }
        return await _add(self.s, bm.RmReferral(**values))

    async def catalogue_entry(
        self, icd10: str, catalogue: str = "grassroots", county: str = COUNTY, **fields: Any
    ) -> bm.RmCatalogueEntry:
        values = {
            "id": uuid.uuid4(),
            **LIVE,
            "county_code": county,
            "catalogue": catalogue,
            "icd10": icd10,
            **fields,
        }
        return await _add(self.s, bm.RmCatalogueEntry(**values))

    async def insurance_year(
        self,
        year: int,
        communities: Mapping[bm.RmCommunity, int],
        county: str = COUNTY,
        *,
        status: str = "budgeted",
        closed_months: int = 0,
        **parameters: Any,
    ) -> bm.InsuranceYear:
        """The year budgeted on its parameters (`communities`: covered residents of each, all of the
        county; `parameters`: any field of `ParametersIn` over these defaults), stored by the
        `set_parameters` use case (so they are checked as an officer's are: `ParameterError` if they do
        not add up). No budget or journal rows are written (claims do not read them); a test of budgets
        runs `set_parameters` and `derive_budgets` itself."""
        body = parameters_body({c.id: n for c, n in communities.items()}, **parameters)
        stored = await set_parameters(self.s, OFFICER, county, year, body, NOW)
        row = bm.InsuranceYear(
            county_code=county,
            year=year,
            parameter_version=stored.version,
            status=status,
            closed_months=closed_months,
        )
        return await _add(self.s, row)

    async def county(self, year: int = 2030) -> BillingCounty:
        community = await self.community()
        hospital = await self.institution(community, "county")
        township = await self.institution(community, "township")
        resident = await self.resident(community)
        insurance_year = await self.insurance_year(year, {community: 10_000})
        return BillingCounty(community, hospital, township, resident, insurance_year)


async def billing_county(s: AsyncSession, year: int = 2030) -> BillingCounty:
    return await BillingRows(s).county(year)
