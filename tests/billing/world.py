"""A county for the billing tests, built the way production builds it: written to the registry, relayed
to Kafka, consumed by billing's idempotent consumer; an upward referral written to the referral service
and relayed the same way. Every institution is insurance-designated (定点) but village clinic 2, whose
claims billing refuses."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.models import inbox
from services.billing.readmodel import CONSUMED_TOPICS, apply_event
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.devtokens import DevSigner
from shared.outbox import OutboxRelay

from ..conftest import BILLING_DB, KAFKA, REFERRAL_DB, REGISTRY_DB, admin_headers
from ..eventually import eventually
from ..integration.county import COUNTY
from ..referral.world import (
    SESSION_GROUP,
    World,
    build_registry_county,
    ship_registry_events,
    start_group_at_the_end,
)

GROUP = f"billing-test-{uuid.uuid4().hex[:8]}"
SESSION_START = datetime.now(UTC)  # events older than this are an earlier run's, on a developer's broker
Ready = Callable[[AsyncEngine, IdempotentConsumer], Awaitable[bool]]
DESIGNATED = ("hospital1", "township1", "village1", "hospital2", "township2")  # not village2


async def run_billing_consumer(engine: AsyncEngine, ready: Ready, seconds: float = 60) -> IdempotentConsumer:
    """Run billing's consumer (this session's group) until `ready` holds."""
    db = Database(BILLING_DB)
    consumer = IdempotentConsumer(db, inbox, KAFKA, GROUP, CONSUMED_TOPICS, apply_event)
    task = asyncio.create_task(consumer.run_forever())
    try:
        await eventually(lambda: ready(engine, consumer), "billing read model ready", seconds, every=0.2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.dispose()
    return consumer


def has_ids(ids: set[str]) -> Ready:
    async def ready(engine: AsyncEngine, consumer: IdempotentConsumer) -> bool:
        async with engine.connect() as conn:
            found = set(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT id::text FROM rm_institutions UNION ALL SELECT id::text FROM rm_residents "
                            "UNION ALL SELECT id::text FROM rm_contracts UNION ALL SELECT id::text FROM rm_communities "
                            "UNION ALL SELECT id::text FROM rm_teams "
                            "UNION ALL SELECT id::text FROM rm_referrals WHERE status = 'accepted' "
                            "UNION ALL SELECT 'designated:' || id::text FROM rm_institutions "
                            "WHERE insurance_designated "
                            "UNION ALL SELECT icd10 FROM rm_catalogue_entries WHERE catalogue = 'grassroots'"
                        )
                    )
                ).scalars()
            )
        return ids <= found

    return ready


async def make_billing_world(
    registry_app: Any,
    referral_app: Any,
    referral_engine: AsyncEngine,
    billing_engine: AsyncEngine,
    signer: DevSigner,
) -> World:
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()
    await OutboxRelay(REFERRAL_DB, KAFKA).drain()
    await start_group_at_the_end(GROUP, CONSUMED_TOPICS)
    await start_group_at_the_end(SESSION_GROUP)  # the referral service's test group: only what follows
    tag = "B" + uuid.uuid4().hex[:3].upper()
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(signer)
    ) as client:
        ids = await build_registry_county(client, tag)
        r = await client.post(
            "/v1/catalogue-entries",
            json={
                "county_code": COUNTY,
                "catalogue": "grassroots",
                "tier": "township",
                "icd10": "K29",
                "name": "胃炎",
            },
        )
        assert r.status_code in (201, 409), r.text
        for key in DESIGNATED:  # the registry flags the institutions the insurance agency contracts with
            institution = (await client.get(f"/v1/institutions/{ids[key]}")).json()
            r = await client.patch(
                f"/v1/institutions/{ids[key]}",
                json={"version": institution["version"], "insurance_designated": True},
            )
            assert r.status_code == 200, r.text
    # the referral service needs the county too, to take the referral
    await ship_registry_events(referral_engine, {v for k, v in ids.items() if not k.startswith("community")})
    world = World(ids, signer)
    async with AsyncClient(transport=ASGITransport(app=referral_app), base_url="http://referral") as c:
        r = await c.post(
            "/v1/referrals",
            json={
                "direction": "up",
                "resident_id": ids["resident1"],
                "from_institution_id": ids["village1"],
                "to_institution_id": ids["hospital1"],
                "to_department_code": "XNK",
                "diagnosis_icd10": "I20.0",
                "reason": "反复胸痛，需心内科评估",
                "urgency": "routine",
                "clinical_summary": "68岁，高血压病史十年。",
            },
            headers=world.token("village_doctor", "village1", "vdoc1"),
        )
        assert r.status_code == 201, r.text
        ref = r.json()
        r = await c.post(
            f"/v1/referrals/{ref['id']}/accept",
            json={"version": ref["version"]},
            headers=world.token("referral_coordinator", "hospital1"),
        )
        assert r.status_code == 200, r.text
    ids["referral"] = ref["id"]
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()
    await OutboxRelay(REFERRAL_DB, KAFKA).drain()
    billing_keys = (
        "hospital",
        "township",
        "village",
        "resident",
        "contract_of",
        "community",
        "team",
        "referral",
    )
    wanted = {v for k, v in ids.items() if k.startswith(billing_keys)} | {"K29"}
    wanted |= {f"designated:{ids[k]}" for k in DESIGNATED}
    await run_billing_consumer(billing_engine, has_ids(wanted))
    return world
