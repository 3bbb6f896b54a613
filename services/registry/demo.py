"""The demo county: Yuzhou (禹州市, 411081) with two medical communities.

Small aggregates go through the real use cases (so the demo obeys every rule); residents and
contracts are bulk-inserted with their outbox events in the same transaction, which keeps the load
to seconds. Loading twice changes nothing: the first community's code marks a loaded county.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.pii import PiiVault, mask_national_id, mask_phone, resident_owner

from . import models as m
from .domain.contracts import contract_term, key_populations
from .domain.national_id import make_national_id
from .events import contract, outbox_row, resident
from .schemas import (
    CatalogueEntryIn,
    CommunityIn,
    CommunityPatch,
    DepartmentIn,
    InstitutionIn,
    PractitionerIn,
    RegionIn,
    TeamIn,
    TeamMemberIn,
)
from .settings import RegistrySettings
from .usecases import catalogues, orgs, workforce

COUNTY = "411081"
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英建华文玉珍红梅志国海燕金凤春晓东"
TOWNSHIPS = ["顺店", "方山", "鸿畅", "梁北", "古城", "神垕", "火龙", "文殊", "无梁", "花石"]
CLINICAL = [
    ("NEI", "内科"),
    ("WAI", "外科"),
    ("ERK", "儿科"),
    ("FUK", "妇产科"),
    ("SJN", "神经内科"),
    ("XNK", "心血管内科"),
    ("GUK", "骨科"),
    ("ZLK", "肿瘤科"),
]
EXAMS = [("CT", "CT室"), ("MRI", "磁共振室"), ("US", "超声科"), ("ENDO", "内镜中心")]
FIRST_IN_COUNTY = [
    f"{c}"
    for c in [
        "I10",
        "I11.9",
        "I20.0",
        "I21.9",
        "I25.1",
        "I48",
        "I50.9",
        "I63.9",
        "I61.9",
        "E11.9",
        "E10.9",
        "E78.5",
        "J18.9",
        "J44.1",
        "J45.9",
        "J20.9",
        "K29.7",
        "K35.8",
        "K40.9",
        "K80.2",
        "K85.9",
        "K92.2",
        "N18.9",
        "N39.0",
        "N20.0",
        "M16.9",
        "M17.9",
        "M51.2",
        "S72.0",
        "S82.8",
        "S52.5",
        "S06.0",
        "O80.0",
        "O82.9",
        "O14.9",
        "P59.9",
        "A09.9",
        "B18.1",
        "C16.9",
        "C18.9",
        "C22.0",
        "C34.9",
        "C50.9",
        "D25.9",
        "G40.9",
        "G45.9",
        "F20.9",
        "F32.9",
        "H25.9",
        "H40.9",
        "L03.9",
        "T14.9",
    ]
]
GRASSROOTS = [
    "I10",
    "E11.9",
    "J06.9",
    "J20.9",
    "K29.7",
    "M54.5",
    "N39.0",
    "A09.9",
    "J44.1",
    "E78.5",
    "L30.9",
    "H10.9",
]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


async def _already_loaded(s: AsyncSession) -> bool:
    return bool(await s.scalar(sa.select(m.Community.id).where(m.Community.code == "YZ-RMYY")))


async def _orgs(s: AsyncSession, rng: random.Random) -> dict[str, Any]:
    for code, name, level, parent in (
        ("410000", "河南省", "province", None),
        ("411000", "许昌市", "city", "410000"),
        (COUNTY, "禹州市", "county", "411000"),
    ):
        if not await s.get(m.Region, code):
            await orgs.create_region(s, RegionIn(code=code, name=name, level=level, parent_code=parent))
    depts = [DepartmentIn(code=c, name=n, kind="clinical") for c, n in CLINICAL] + [
        DepartmentIn(code=c, name=n, kind="exam") for c, n in EXAMS
    ]
    communities, leads, townships, villages = [], [], [], []
    for code, cname, lcode, lname, kind in (
        ("YZ-RMYY", "禹州市人民医院医共体", "YZ-H001", "禹州市人民医院", "general"),
        ("YZ-ZYY", "禹州市中医院医共体", "YZ-H002", "禹州市中医院", "tcm"),
    ):
        c = await orgs.create_community(s, CommunityIn(code=code, name=cname, county_code=COUNTY))
        lead = await orgs.create_institution(
            s,
            InstitutionIn(
                code=lcode,
                name=lname,
                tier="county",
                kind=kind,
                region_code=COUNTY,
                community_id=c.id,
                membership="lead",
                insurance_designated=True,
                departments=depts,
                service_centres=["imaging", "lab", "ecg", "pathology"]
                if kind == "general"
                else ["sterilisation"],
            ),
        )
        await orgs.update_community(s, c.id, CommunityPatch(version=c.version, lead_institution_id=lead.id))
        communities.append(c)
        leads.append(lead)
    for code, name, kind in (
        ("YZ-H003", "禹州市妇幼保健院", "maternal_child"),
        ("YZ-H004", "禹州市疾病预防控制中心", "cdc"),
    ):
        await orgs.create_institution(
            s,
            InstitutionIn(
                code=code,
                name=name,
                tier="county",
                kind=kind,
                region_code=COUNTY,
                community_id=communities[0].id,
                membership="collaborating",
                insurance_designated=kind == "maternal_child",
            ),
        )
    for t, town in enumerate(TOWNSHIPS):
        c = communities[t % 2]
        tc = await orgs.create_institution(
            s,
            InstitutionIn(
                code=f"YZ-T{t:02d}",
                name=f"禹州市{town}镇卫生院",
                tier="township",
                kind="township_centre",
                region_code=COUNTY,
                community_id=c.id,
                membership="tight",
                insurance_designated=True,
                departments=[DepartmentIn(code="QK", name="全科"), DepartmentIn(code="ZYK", name="中医科")],
            ),
        )
        townships.append(tc)
        for v in range(6):
            vc = await orgs.create_institution(
                s,
                InstitutionIn(
                    code=f"YZ-T{t:02d}V{v}",
                    name=f"{town}镇{_name(rng)[0]}庄村卫生室",
                    tier="village",
                    kind="village_clinic",
                    region_code=COUNTY,
                    community_id=c.id,
                    membership="tight",
                    insurance_designated=True,
                ),
            )
            villages.append(vc)
    return {"communities": communities, "leads": leads, "townships": townships, "villages": villages}


async def _workforce(s: AsyncSession, rng: random.Random, o: dict[str, Any]) -> list[Any]:
    teams = []
    n = 0

    async def person(
        inst_id: uuid.UUID, title: str, specialty: str, gp: bool = False, profession: str = "physician"
    ) -> Any:
        nonlocal n
        n += 1
        return await workforce.create_practitioner(
            s,
            PractitionerIn(
                licence_no=f"YZ-P{n:04d}",
                name=_name(rng),
                profession=profession,
                title=title,
                specialties=[specialty],
                general_practitioner=gp,
                institution_id=inst_id,
            ),
        )

    for lead in o["leads"]:
        for _code, name in CLINICAL:
            for title in ("chief", "associate_chief", "attending", "resident", "resident"):
                await person(lead.id, title, name)
    villages_of = {tc.id: [v for v in o["villages"] if v.code.startswith(tc.code)] for tc in o["townships"]}
    for t, tc in enumerate(o["townships"]):
        community = o["communities"][t % 2]
        for k in range(2):
            lead_gp = await person(tc.id, "attending" if k == 0 else "resident", "全科医学", gp=True)
            members = [
                await person(v.id, "village_doctor", "乡村全科")
                for v in villages_of[tc.id][k * 3 : (k + 1) * 3]
            ]
            nurse = await person(tc.id, "nurse_in_charge", "护理", profession="nurse")
            team = await workforce.create_team(
                s,
                TeamIn(
                    code=f"YZ-TEAM-{t:02d}{k}",
                    name=f"{tc.name}家庭医生{k + 1}队",
                    community_id=community.id,
                    institution_id=tc.id,
                    lead_practitioner_id=lead_gp.id,
                    members=[TeamMemberIn(practitioner_id=x.id, role="member") for x in members]
                    + [TeamMemberIn(practitioner_id=nurse.id, role="nurse")],
                ),
            )
            teams.append(team)
    return teams


async def _residents(
    s: AsyncSession,
    vault: PiiVault,
    rng: random.Random,
    o: dict[str, Any],
    teams: list[Any],
    count: int,
    contracts: int,
    today: date,
) -> tuple[int, int]:
    villages = o["villages"]
    teams_by_village: dict[str, Any] = {}
    for team in teams:
        for v in villages:
            if v.community_id == team.community_id and v.code[:6] == f"YZ-T{team.code[-3:-1]}":
                teams_by_village.setdefault(v.id, team)
    residents: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    contract_rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for i in range(count):
        village = villages[i % len(villages)]
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange((today - date(1930, 1, 1)).days))
        nid = make_national_id(COUNTY, birth, rng.randrange(1000))
        while nid in used:
            nid = make_national_id(COUNTY, birth, rng.randrange(1000))
        used.add(nid)
        phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        flags = [
            f
            for f, p in (
                ("chronic_disease", 0.18),
                ("disabled", 0.03),
                ("registered_poor", 0.04),
                ("severe_mental", 0.005),
                ("pregnant_postpartum", 0.01),
                ("family_planning_special", 0.005),
            )
            if rng.random() < p
        ]
        rid = uuid.uuid4()
        row = {
            "id": rid,
            "national_id_hash": vault.lookup_hash(nid),
            "national_id_sealed": vault.seal(nid, resident_owner(rid, "national_id")),
            "national_id_masked": mask_national_id(nid),
            "phone_hash": vault.lookup_hash(phone),
            "phone_sealed": vault.seal(phone, resident_owner(rid, "phone")),
            "phone_masked": mask_phone(phone),
            "name": _name(rng),
            "gender": "male" if int(nid[16]) % 2 else "female",
            "birth_date": birth,
            "region_code": COUNTY,
            "community_id": village.community_id,
            "home_institution_id": village.id,
            "key_populations": flags,
            "active": True,
            "version": 1,
        }
        residents.append(row)
        events.append(outbox_row(resident("created", SimpleNamespace(**row))))
    # sign key populations first, the way family doctors do, then others up to the contract count
    order = sorted(
        residents,
        key=lambda r: (not key_populations(r["birth_date"], set(r["key_populations"]), today), rng.random()),
    )
    for r in order[:contracts]:
        team = teams_by_village[r["home_institution_id"]]
        term = contract_term(today - timedelta(days=rng.randrange(300)))
        row = {
            "id": uuid.uuid4(),
            "resident_id": r["id"],
            "team_id": team.id,
            "community_id": team.community_id,
            "start_date": term.start,
            "end_date": term.end,
            "status": "active",
            "key_populations": sorted(
                key_populations(r["birth_date"], set(r["key_populations"]), term.start)
            ),
            "previous_contract_id": None,
            "terminated_at": None,
            "termination_reason": None,
            "version": 1,
        }
        contract_rows.append(row)
        events.append(outbox_row(contract("signed", SimpleNamespace(**row))))
    await s.execute(sa.insert(m.Resident), residents)
    await s.execute(sa.insert(m.Contract), contract_rows)
    await s.execute(sa.insert(m.outbox), events)
    return len(residents), len(contract_rows)


async def load_demo(
    settings: RegistrySettings,
    residents: int = 20_000,
    contracts: int | None = None,
    today: date | None = None,
) -> str:
    db = Database(settings.database_url)
    vault = settings.vault()
    rng = random.Random(11643)
    today = today or date.today()
    try:
        async with db.uow() as uow:
            s = uow.session
            await s.execute(sa.text("SELECT pg_advisory_xact_lock(411081)"))  # two loaders at once: one wins
            if await _already_loaded(s):
                return "demo county already loaded; nothing changed"
            o = await _orgs(s, rng)
            teams = await _workforce(s, rng, o)
            for code in FIRST_IN_COUNTY:
                await catalogues.add_entry(
                    s,
                    CatalogueEntryIn(
                        county_code=COUNTY,
                        catalogue="first_in_county",
                        tier="all",
                        icd10=code,
                        name=f"县域首诊病种 {code}",
                    ),
                )
            for code in GRASSROOTS:
                for tier in ("township", "village"):
                    await catalogues.add_entry(
                        s,
                        CatalogueEntryIn(
                            county_code=COUNTY,
                            catalogue="grassroots",
                            tier=tier,
                            icd10=code,
                            name=f"基层病种 {code}",
                        ),
                    )
            n_res, n_con = await _residents(
                s,
                vault,
                rng,
                o,
                teams,
                residents,
                contracts if contracts is not None else residents * 3 // 10,
                today,
            )
            practitioners = await s.scalar(sa.select(sa.func.count()).select_from(m.Practitioner))
            institutions = await s.scalar(sa.select(sa.func.count()).select_from(m.Institution))
            await uow.commit()
        return (
            f"demo county {COUNTY} loaded: 2 communities, {institutions} institutions, {practitioners} "
            f"practitioners, {len(teams)} teams, {n_res} residents, {n_con} contracts"
        )
    finally:
        await db.dispose()
