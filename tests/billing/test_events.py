"""Billing's events: every journal reaches Kafka with its lines, so replaying the `billing.*` topics
rebuilds every balance to the fen; an event delivered twice, or a run started twice, takes effect once."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.events import TOPICS
from shared.consumer import IdempotentConsumer
from shared.events import EventEnvelope
from shared.outbox import OutboxRelay

from ..conftest import BILLING_DB, KAFKA
from ..events.kafka_helpers import collect
from ..referral.world import World
from .helpers import claim, officer, open_year, parameters, post_claims, run
from .world import SESSION_START, run_billing_consumer

YEAR = 2030
Key = tuple[str, str | None, str | None]


async def db_balances(engine: AsyncEngine) -> tuple[dict[Key, int], set[str]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT account, community_id::text, institution_id::text, sum(amount) FROM ledger_lines "
                    "GROUP BY 1, 2, 3"
                )
            )
        ).all()
        keys = set((await conn.execute(sa.text("SELECT key FROM journals"))).scalars())
    return {(a, c, i): int(v) for a, c, i, v in rows}, keys


def project(events: list[EventEnvelope], keys: set[str]) -> dict[Key, int]:
    """What a downstream reader computes from the events alone (the last event of each journal key)."""
    journals = {e.data["key"]: e.data for e in events if e.type.endswith(".posted") and e.data["key"] in keys}
    out: dict[Key, int] = defaultdict(int)
    for j in journals.values():
        for line in j["lines"]:
            out[(line["account"], line["community_id"], line["institution_id"])] += line["amount"]
    return {k: v for k, v in out.items()}


async def test_replaying_billing_events_rebuilds_the_balances(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    budgets = await open_year(c, w, YEAR, parameters(w, (10, 10)))
    # two officers start the same prepayment at once: one posts, the other finds it done
    first, second = await asyncio.gather(
        c.post(f"/v1/insurance-years/411081/{YEAR}/prepayments/1", headers=officer(w)),
        c.post(f"/v1/insurance-years/411081/{YEAR}/prepayments/1", headers=officer(w)),
    )
    assert sorted([first.json()["posted"], second.json()["posted"]]) == [False, True]
    await post_claims(
        c, w, "hospital2", [claim(w, "E-1", "hospital2", "resident1", "outpatient", f"{YEAR}-01-09", 90_000)]
    )
    await run(c, w, f"{YEAR}/months/1/close")

    await OutboxRelay(BILLING_DB, KAFKA).drain()
    balances, keys = await db_balances(billing_engine)
    assert (
        len([k for k in keys if k.startswith("prepayment:") and k.endswith(f":{YEAR}:01")]) == 2
    )  # 2 communities

    def all_journals(got: list[EventEnvelope]) -> bool:
        return keys <= {e.data.get("key") for e in got if e.time >= SESSION_START}

    events = [e for e in await collect(KAFKA, TOPICS, all_journals) if e.time >= SESSION_START]
    rebuilt = project(events, keys)
    derived = [e.data for e in events if e.type == "billing.budget.derived" and e.data["year"] == YEAR]
    assert {d["community_id"]: d["amount"] for d in derived} == {
        b["community_id"]: b["amount"] for b in budgets
    }
    assert {k: v for k, v in rebuilt.items() if v} == {k: v for k, v in balances.items() if v}
    assert sum(rebuilt.values()) == 0


async def test_an_event_delivered_twice_takes_effect_once(billing_engine: AsyncEngine, county: World) -> None:
    w = county
    [original] = [
        e
        for e in await collect(
            KAFKA,
            "referral.referrals",
            lambda got: any(
                x.subject == f"referral/{w.ids['referral']}" and x.data["status"] == "accepted" for x in got
            ),
        )
        if e.subject == f"referral/{w.ids['referral']}" and e.data["status"] == "accepted"
    ][-1:]
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        for _ in range(2):  # the broker delivers the very same event two more times
            await producer.send_and_wait(
                "referral.referrals", original.to_bytes(), key=w.ids["referral"].encode()
            )
    finally:
        await producer.stop()

    async def inbox_rows(engine: AsyncEngine) -> int:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    sa.text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": original.id}
                )
                or 0
            )

    async def caught_up(engine: AsyncEngine, consumer: IdempotentConsumer) -> bool:
        return await consumer.lag() == 0

    await run_billing_consumer(billing_engine, caught_up)
    assert await inbox_rows(billing_engine) == 1
    async with billing_engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT status, version FROM rm_referrals WHERE id = :i"), {"i": w.ids["referral"]}
            )
        ).all()
    assert [tuple(r) for r in rows] == [("accepted", original.data["version"])]
