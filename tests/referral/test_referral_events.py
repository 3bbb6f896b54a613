"""The read model comes from real registry events and can be rebuilt; referral events reach Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.models import READ_MODELS
from services.referral.readmodel import clear_read_models
from shared.db import Database
from shared.outbox import OutboxRelay

from ..conftest import KAFKA, REFERRAL_DB, admin_headers
from ..events.kafka_helpers import collect
from ..integration.county import COUNTY, post
from .test_referral_flows import step, submit, upward
from .world import World, ship_registry_events


async def test_new_registry_institution_becomes_a_referral_destination(
    referral_client: AsyncClient, world: World, registry_app: Any, referral_engine: AsyncEngine
) -> None:
    async with AsyncClient(
        transport=ASGITransport(app=registry_app),
        base_url="http://registry",
        headers=admin_headers(world.signer),
    ) as registry:
        for code, level, parent in (("410000", "province", None), (COUNTY, "county", "410000")):
            r = await registry.post(
                "/v1/regions", json={"code": code, "name": code, "level": level, "parent_code": parent}
            )
            assert r.status_code in (201, 409)  # other tests may have emptied the registry since the world
        community = await post(
            registry,
            "/v1/communities",
            {"code": f"NC{uuid.uuid4().hex[:6]}", "name": "新医共体", "county_code": COUNTY},
        )
        new = await post(
            registry,
            "/v1/institutions",
            {
                "code": f"NEW{uuid.uuid4().hex[:6]}",
                "name": "新建县中医院",
                "tier": "county",
                "kind": "tcm",
                "region_code": COUNTY,
                "community_id": community["id"],
                "membership": "lead",
                "departments": [{"code": "ZYK", "name": "中医科"}],
            },
        )
    body = upward(world, to_institution_id=new["id"], to_department_code="ZYK", scope="inter_community")
    unknown = await referral_client.post(
        "/v1/referrals", json=body, headers=world.token("village_doctor", "village1", "vdoc1")
    )
    assert unknown.status_code == 422  # not in the read model yet
    await ship_registry_events(referral_engine, {new["id"]})  # its community comes along on its own topic
    ref = await submit(referral_client, world, body)
    assert ref["to_institution_id"] == new["id"] and ref["to_tier"] == "county"


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    async with engine.connect() as conn:
        for model in READ_MODELS:
            rows = await conn.execute(sa.text(f"SELECT * FROM {model.__tablename__} ORDER BY id"))
            out[model.__tablename__] = [tuple(r) for r in rows]
    return out


async def rebuild(engine: AsyncEngine, wanted: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Empty the read models and replay every registry topic from the start with a new consumer group."""
    db = Database(REFERRAL_DB)
    async with db.uow() as uow:
        await clear_read_models(uow.session)
        await uow.commit()
    await db.dispose()
    assert (await snapshot(engine))["rm_institutions"] == []
    await ship_registry_events(
        engine, wanted, group=f"referral-rebuild-{uuid.uuid4().hex[:6]}", to_end=True, seconds=300
    )
    return await snapshot(engine)


async def test_replaying_registry_topics_rebuilds_the_same_read_model(
    world: World, referral_engine: AsyncEngine
) -> None:
    wanted = {v for k, v in world.ids.items() if not k.startswith("community")}
    first = await rebuild(referral_engine, wanted)
    assert first["rm_institutions"] and first["rm_residents"] and first["rm_catalogue_entries"]
    second = await rebuild(referral_engine, wanted)
    assert second == first


async def test_referral_state_changes_reach_kafka(referral_client: AsyncClient, world: World) -> None:
    c, w = referral_client, world
    ref = await submit(c, w, upward(w))
    ref = await step(c, ref, "accept", w.token("referral_coordinator", "hospital1"))
    relay = OutboxRelay(REFERRAL_DB, KAFKA)
    task = asyncio.create_task(relay.run())
    try:
        events = await collect(
            KAFKA,
            "referral.referrals",
            lambda evs: sum(e.subject == f"referral/{ref['id']}" for e in evs) >= 2,
        )
    finally:
        relay.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    mine = [e for e in events if e.subject == f"referral/{ref['id']}"]
    assert [e.type for e in mine] == ["referral.submitted", "referral.accept"]
    data = mine[-1].data
    assert data["status"] == "accepted" and data["priority"] is True and data["from_tier"] == "village"
    assert data["to_tier"] == "county" and data["diagnosis_icd10"] == "I20.0"
    # contract version 2 (issue #13): the step's role, not who took it; no free text; version 3 (issue #14):
    # the upward referral a downward one continues (none for an upward one)
    assert mine[-1].schemaversion == 3 and "clinical_summary" not in data and "reason" not in data
    assert data["continues_referral_id"] is None
    assert all("胸痛" not in e.to_bytes().decode() and "高血压" not in e.to_bytes().decode() for e in mine)
    assert data["event"] == {
        "action": "accept",
        "from_status": "submitted",
        "role": "referral_coordinator",
        "detail": {},
    }
