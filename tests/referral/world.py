"""A county built in the real registry, shipped to the referral service through Kafka (outbox relay →
registry topics → the referral service's idempotent consumer), once per test session."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.referral.models import RmPractitioner, inbox
from services.referral.readmodel import REGISTRY_TOPICS, apply_registry_event
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.devtokens import DevSigner
from shared.outbox import OutboxRelay

from ..conftest import KAFKA, REFERRAL_DB, REGISTRY_DB, admin_headers
from ..eventually import eventually
from ..factories import ReferralRows
from ..integration.county import COUNTY, national_id, post


@dataclass
class World:
    ids: dict[str, str]
    signer: DevSigner

    def token(
        self,
        role: str,
        institution: str | None = None,
        practitioner: str | None = None,
        resident: str | None = None,
        subject: str | None = None,
    ) -> dict[str, str]:
        claims: dict[str, Any] = {}
        if institution:
            claims["institution_id"] = self.ids[institution]
        if practitioner:
            claims["practitioner_id"] = self.ids[practitioner]
        if resident:
            claims["resident_id"] = self.ids[resident]
        token = self.signer.mint(role, subject=subject or f"{role}@{institution or resident}", **claims)
        return {"Authorization": f"Bearer {token}"}


READ_MODEL_IDS = sa.text(
    "SELECT id::text FROM rm_institutions UNION ALL SELECT id::text FROM rm_residents "
    "UNION ALL SELECT id::text FROM rm_teams UNION ALL SELECT id::text FROM rm_practitioners "
    "UNION ALL SELECT id::text FROM rm_contracts UNION ALL SELECT id::text FROM rm_communities"
)


async def build_registry_county(client: AsyncClient, tag: str) -> dict[str, str]:
    """Two communities in county 411081; codes carry `tag` so several worlds can coexist."""
    ids: dict[str, str] = {}
    for code, name, level, parent in (
        ("410000", "河南省", "province", None),
        (COUNTY, "禹州市", "county", "410000"),
    ):
        r = await client.post(
            "/v1/regions", json={"code": code, "name": name, "level": level, "parent_code": parent}
        )
        assert r.status_code in (201, 409), r.text

    async def inst(key: str, **body: Any) -> None:
        ids[key] = (
            await post(
                client, "/v1/institutions", {"region_code": COUNTY, **body, "code": f"{tag}{body['code']}"}
            )
        )["id"]

    for n in (1, 2):
        c = await post(
            client, "/v1/communities", {"code": f"{tag}C{n}", "name": f"医共体{n}", "county_code": COUNTY}
        )
        ids[f"community{n}"] = c["id"]
        await inst(
            f"hospital{n}",
            code=f"H{n}",
            name=f"县医院{n}",
            tier="county",
            kind="general",
            community_id=c["id"],
            membership="lead",
            departments=[
                {"code": "NEI", "name": "内科"},
                {"code": "XNK", "name": "心内科"},
                {"code": "CT", "name": "CT室", "kind": "exam"},
            ],
        )
        r = await client.patch(
            f"/v1/communities/{c['id']}", json={"version": 1, "lead_institution_id": ids[f"hospital{n}"]}
        )
        assert r.status_code == 200, r.text
        await inst(
            f"township{n}",
            code=f"T{n}",
            name=f"卫生院{n}",
            tier="township",
            kind="township_centre",
            community_id=c["id"],
            membership="tight",
        )
        await inst(
            f"village{n}",
            code=f"V{n}",
            name=f"村卫生室{n}",
            tier="village",
            kind="village_clinic",
            community_id=c["id"],
            membership="tight",
        )

    async def person(key: str, inst_key: str, title: str, gp: bool = False) -> None:
        ids[key] = (
            await post(
                client,
                "/v1/practitioners",
                {
                    "licence_no": f"{tag}{key}",
                    "name": key,
                    "title": title,
                    "general_practitioner": gp,
                    "institution_id": ids[inst_key],
                },
            )
        )["id"]

    await person("gp1", "township1", "attending", gp=True)
    await person("vdoc1", "village1", "village_doctor")
    await person("vdoc1b", "village1", "village_doctor")  # not in the resident's team
    await person("spec1", "hospital1", "chief")
    await person("gp2", "township2", "attending", gp=True)
    await person("vdoc2", "village2", "village_doctor")
    for n in (1, 2):
        ids[f"team{n}"] = (
            await post(
                client,
                "/v1/teams",
                {
                    "code": f"{tag}TEAM{n}",
                    "name": f"团队{n}",
                    "community_id": ids[f"community{n}"],
                    "institution_id": ids[f"township{n}"],
                    "lead_practitioner_id": ids[f"gp{n}"],
                    "members": [{"practitioner_id": ids[f"vdoc{n}"], "role": "member"}],
                },
            )
        )["id"]
    for key, community, village, order in (
        ("resident1", 1, 1, 1),
        ("resident2", 2, 2, 2),
        ("resident3", 1, 1, 3),
    ):
        nid = national_id(date(1950, 1, 1), int(uuid.uuid4().int % 900) + order)
        r = await client.post(
            "/v1/residents",
            json={
                "national_id": nid,
                "name": key,
                "community_id": ids[f"community{community}"],
                "home_institution_id": ids[f"village{village}"],
            },
        )
        assert r.status_code == 201, r.text
        ids[key] = r.json()["id"]
    for key, team in (("resident1", "team1"), ("resident2", "team2")):  # resident3 has no contract
        contract = await post(
            client,
            "/v1/contracts",
            {"resident_id": ids[key], "team_id": ids[team], "start_date": "2026-01-01"},
        )
        ids[f"contract_of_{key}"] = contract["id"]
    for catalogue, tier, code in (("grassroots", "village", "I10"), ("first_in_county", "all", "C34.9")):
        r = await client.post(
            "/v1/catalogue-entries",
            json={"county_code": COUNTY, "catalogue": catalogue, "tier": tier, "icd10": code, "name": code},
        )
        assert r.status_code in (201, 409), r.text
    return ids


SESSION_GROUP = f"referral-test-{uuid.uuid4().hex[:8]}"  # a fresh database gets a fresh consumer group


async def ship_registry_events(
    engine: AsyncEngine,
    wanted: set[str],
    group: str = SESSION_GROUP,
    seconds: float = 60,
    to_end: bool = False,
) -> IdempotentConsumer:
    """Relay the registry outbox to Kafka and run the referral consumer until `wanted` ids are in its read
    models (and, with `to_end`, until it has consumed every registry topic to its end)."""
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()
    db = Database(REFERRAL_DB)
    consumer = IdempotentConsumer(db, inbox, KAFKA, group, REGISTRY_TOPICS, apply_registry_event)
    task = asyncio.create_task(consumer.run_forever())
    try:

        async def caught_up() -> bool:
            async with engine.connect() as conn:
                found = set((await conn.execute(READ_MODEL_IDS)).scalars())
            return wanted <= found and (not to_end or await consumer.lag() == 0)

        await eventually(caught_up, f"referral read model has the {len(wanted)} ids", seconds, every=0.2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.dispose()
    return consumer


async def start_group_at_the_end(group: str, topics: list[str] = REGISTRY_TOPICS) -> None:
    """Commit the group's offsets at the current end of the registry topics, so it reads only what this
    session's registry writes (the broker of a developer's machine keeps every earlier run's events)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        if ends:
            await consumer.commit({tp: offset for tp, offset in ends.items()})
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def registry_admin(registry_app: Any, w: World) -> AsyncIterator[AsyncClient]:
    """The registry as the commission's administrator, to add to the county in a test of its own."""
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(w.signer)
    ) as client:
        yield client


async def village_with_team(referral_engine: AsyncEngine, w: World, community: int = 1) -> dict[str, str]:
    """A new village clinic of the community with a family-doctor team of its own (the community's
    township GP and the clinic's village doctor), written straight into the referral read model as the
    registry's events would leave it: registry tests earlier in a full run may have emptied the registry
    the world was built in, and the registry → read model path has tests of its own. New in each test, so
    the world's own clinics keep having no team."""
    async with AsyncSession(referral_engine, expire_on_commit=False) as s:
        rows = ReferralRows(s)
        village = await rows.institution(
            tier="village",
            standalone=True,
            name="有团队的村卫生室",
            community_id=uuid.UUID(w.ids[f"community{community}"]),
            membership="tight",
        )
        doctor = await rows.practitioner(village, title="village_doctor")
        gp = await s.get(RmPractitioner, uuid.UUID(w.ids[f"gp{community}"]))
        assert gp is not None
        team = await rows.team(village, members=[gp, doctor])
        await s.commit()
    return {"village": str(village.id), "doctor": str(doctor.id), "team": str(team.id)}


async def other_county(
    registry_app: Any, referral_engine: AsyncEngine, w: World, county_code: str
) -> dict[str, str]:
    """A second county (one community: a hospital, a township centre with a family-doctor team, a village
    clinic, a resident), in the referral read model; its ids are added to the world as `<key>@<county>`."""
    tag = uuid.uuid4().hex[:6].upper()
    ids: dict[str, str] = {}
    async with registry_admin(registry_app, w) as client:
        for code, level, parent in (("410000", "province", None), (county_code, "county", "410000")):
            r = await client.post(
                "/v1/regions", json={"code": code, "name": code, "level": level, "parent_code": parent}
            )
            assert r.status_code in (201, 409), r.text
        community = await post(
            client, "/v1/communities", {"code": f"K{tag}", "name": "他县医共体", "county_code": county_code}
        )

        async def inst(key: str, tier: str, kind: str, **body: Any) -> None:
            ids[key] = (
                await post(
                    client,
                    "/v1/institutions",
                    {
                        "code": f"K{tag}{key}",
                        "name": key,
                        "tier": tier,
                        "kind": kind,
                        "region_code": county_code,
                        "community_id": community["id"],
                        **body,
                    },
                )
            )["id"]

        await inst(
            "hospital", "county", "general", membership="lead", departments=[{"code": "NEI", "name": "内科"}]
        )
        await inst("township", "township", "township_centre", membership="tight")
        await inst("village", "village", "village_clinic", membership="tight")
        for key, where, title, gp in (
            ("gp", "township", "attending", True),
            ("vdoc", "village", "village_doctor", False),
            ("spec", "hospital", "chief", False),
        ):
            ids[key] = (
                await post(
                    client,
                    "/v1/practitioners",
                    {
                        "licence_no": f"K{tag}{key}",
                        "name": key,
                        "title": title,
                        "general_practitioner": gp,
                        "institution_id": ids[where],
                    },
                )
            )["id"]
        ids["team"] = (
            await post(
                client,
                "/v1/teams",
                {
                    "code": f"K{tag}",
                    "name": "他县团队",
                    "community_id": community["id"],
                    "institution_id": ids["township"],
                    "lead_practitioner_id": ids["gp"],
                    "members": [{"practitioner_id": ids["vdoc"], "role": "member"}],
                },
            )
        )["id"]
        ids["resident"] = (
            await post(
                client,
                "/v1/residents",
                {
                    "national_id": national_id(date(1961, 6, 1), int(uuid.uuid4().int % 900) + 5),
                    "name": "他县居民",
                    "community_id": community["id"],
                    "home_institution_id": ids["village"],
                },
            )
        )["id"]
    ids["community"] = community["id"]
    await ship_registry_events(referral_engine, set(ids.values()))
    w.ids.update({f"{k}@{county_code}": v for k, v in ids.items()})
    return ids


async def make_world(registry_app: Any, referral_engine: AsyncEngine, signer: DevSigner) -> World:
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()  # earlier tests' events go out before the start mark
    await start_group_at_the_end(SESSION_GROUP)
    tag = uuid.uuid4().hex[:4].upper()
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(signer)
    ) as client:
        ids = await build_registry_county(client, tag)
    await ship_registry_events(referral_engine, {v for k, v in ids.items() if not k.startswith("community")})
    return World(ids, signer)
