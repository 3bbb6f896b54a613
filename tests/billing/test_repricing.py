"""A claim that reaches billing before its referral does (issue #12, cross-service order): the claim is
stored priced provisionally, as unreferred, and priced again when the referral's event arrives through
Kafka; the difference changes an open month's figures, or is posted as an adjusting journal once the
month is closed; a redelivered event changes nothing. Figures in fen: tiers of helpers.TIERS, county
ratio 0.70 with a 60,000 deductible, an unreferred county visit for a grassroots disease (I10) 0.50."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.consumer import IdempotentConsumer
from shared.events import EventEnvelope
from shared.outbox import OutboxRelay

from ..conftest import KAFKA, REFERRAL_DB
from ..events.kafka_helpers import collect
from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import claim, his, officer, open_year, parameters, post_claims, run
from .world import SESSION_START, Ready, run_billing_consumer

YEAR = 2025  # no other test uses it
KNOWN_YEAR = 2024


async def submit_referral(
    referral_app: Any, w: World, resident: str, village: str, hospital: str
) -> dict[str, Any]:
    """An upward referral between communities, submitted to the referral service (not relayed yet)."""
    async with AsyncClient(transport=ASGITransport(app=referral_app), base_url="http://referral") as c:
        r = await c.post(
            "/v1/referrals",
            json={
                "direction": "up",
                "scope": "inter_community",
                "resident_id": w.ids[resident],
                "from_institution_id": w.ids[village],
                "to_institution_id": w.ids[hospital],
                "to_department_code": "XNK",
                "diagnosis_icd10": "I10",
                "reason": "血压控制不佳，需心内科评估",
                "urgency": "routine",
                "clinical_summary": "70岁，高血压病史。",
                "grassroots_reason": "no_improvement",
            },
            headers=w.token("village_doctor", village, "vdoc1" if village == "village1" else "vdoc2"),
        )
        assert r.status_code == 201, r.text
        ref: dict[str, Any] = r.json()
        return ref


async def accept_referral(referral_app: Any, w: World, ref: dict[str, Any], hospital: str) -> None:
    async with AsyncClient(transport=ASGITransport(app=referral_app), base_url="http://referral") as c:
        r = await c.post(
            f"/v1/referrals/{ref['id']}/accept",
            json={"version": ref["version"]},
            headers=w.token("referral_coordinator", hospital),
        )
        assert r.status_code == 200, r.text


async def claims_by_no(engine: AsyncEngine, numbers: list[str]) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT id, claim_no, pricing, awaiting_referral_id, referred, chain_id, deductible_used, "
                    "ratio, insurance_share, provisional_share, repriced_at FROM claims "
                    "WHERE claim_no = ANY(:n)"
                ),
                {"n": numbers},
            )
        ).mappings()
        return {r["claim_no"]: dict(r) for r in rows}


def all_final(numbers: list[str]) -> Ready:
    async def ready(engine: AsyncEngine, consumer: IdempotentConsumer) -> bool:
        got = await claims_by_no(engine, numbers)
        return len(got) == len(numbers) and all(x["pricing"] == "final" for x in got.values())

    return ready


def referral_known(ident: str, status: str) -> Ready:
    async def ready(engine: AsyncEngine, consumer: IdempotentConsumer) -> bool:
        async with engine.connect() as conn:
            got = await conn.scalar(sa.text("SELECT status FROM rm_referrals WHERE id = :i"), {"i": ident})
        return bool(got == status)

    return ready


async def ledger(engine: AsyncEngine, key: str) -> list[tuple[str, str | None, str | None, int]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT l.account, l.community_id::text, l.institution_id::text, l.amount "
                    "FROM ledger_lines l JOIN journals j ON j.id = l.journal_id WHERE j.key = :k ORDER BY l.id"
                ),
                {"k": key},
            )
        ).all()
    return [(a, c, i, int(v)) for a, c, i, v in rows]


async def year_lines(engine: AsyncEngine, year: int) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT j.key, l.amount FROM ledger_lines l JOIN journals j ON j.id = l.journal_id "
                    "WHERE j.year = :y ORDER BY l.id"
                ),
                {"y": year},
            )
        ).all()
    return [(k, int(v)) for k, v in rows]


async def accepted_event(referral_id: str) -> EventEnvelope:
    def mine(e: EventEnvelope) -> bool:
        return e.subject == f"referral/{referral_id}" and e.data["status"] == "accepted"

    events = await collect(KAFKA, "referral.referrals", lambda got: any(mine(x) for x in got))
    [event] = [e for e in events if mine(e) and e.time >= SESSION_START][-1:]
    return event


async def caught_up(engine: AsyncEngine, consumer: IdempotentConsumer) -> bool:
    return await consumer.lag() == 0


def grassroots_claim(w: World, no: str, resident: str, hospital: str, day: str, ref: str) -> dict[str, Any]:
    return claim(
        w, no, hospital, resident, "outpatient", day, 100_000, diagnosis_icd10="I10", referral_id=ref
    )


async def test_a_claim_before_its_referral_is_priced_again_when_the_referral_arrives(
    billing_client: AsyncClient, billing_engine: AsyncEngine, referral_app: Any, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, YEAR, parameters(w, (10, 10)))
    # resident1 (community 1) referred by village 1 to hospital 2 (community 2), and accepted there;
    # billing hears of none of it until the relay runs below
    ref = await submit_referral(referral_app, w, "resident1", "village1", "hospital2")
    await accept_referral(referral_app, w, ref, "hospital2")

    # the claim first: billing has not heard of the referral, so it prices the visit as unreferred,
    # provisionally: deductible 60,000, (100,000 − 60,000) × 0.50 = 20,000
    jan = grassroots_claim(w, "RP-JAN", "resident1", "hospital2", f"{YEAR}-01-10", ref["id"])
    [stored] = (await post_claims(c, w, "hospital2", [jan]))["claims"]
    assert (stored["pricing"], stored["awaiting_referral_id"], stored["referred"]) == (
        "provisional",
        ref["id"],
        False,
    )
    assert (stored["deductible_used"], stored["ratio"], stored["insurance_share"]) == (
        60_000,
        "0.5000",
        20_000,
    )
    # January closes with the provisional price charged to community 1's budget (care outside it)
    jan_close = await run(c, w, f"{YEAR}/months/1/close")
    [charged] = [j for j in jan_close["journals"] if j["community_id"] == w.ids["community1"]]
    assert charged["outside_care"] == 20_000
    # hospital 2 contests the January charge: the visit was referred, 28,000
    r = await c.post(
        "/v1/disputes",
        json={"claim_id": stored["id"], "claimed": 28_000, "reason": "已转诊，应按转诊计价"},
        headers=his(w, "hospital2"),
    )
    assert r.status_code == 201, r.text
    disputed = r.json()
    assert (disputed["charged"], disputed["claimed"]) == (20_000, 28_000)
    # a February claim on the same referral, while the month is open
    feb = grassroots_claim(w, "RP-FEB", "resident1", "hospital2", f"{YEAR}-02-10", ref["id"])
    assert (await post_claims(c, w, "hospital2", [feb]))["claims"][0]["insurance_share"] == 20_000
    # the year cannot be settled while claims wait for their referral
    scores = {w.ids["community1"]: "100", w.ids["community2"]: "100"}
    refused = await run(c, w, f"{YEAR}/settlement", {"scores": scores}, status=409)
    assert refused["type"].endswith("claims-provisional")
    assert sorted(x["claim_no"] for x in refused["claims"]) == ["RP-FEB", "RP-JAN"]

    # now the referral's events arrive (submitted, then accepted)
    await OutboxRelay(REFERRAL_DB, KAFKA).drain()
    await run_billing_consumer(billing_engine, all_final(["RP-JAN", "RP-FEB"]))
    got = await claims_by_no(billing_engine, ["RP-JAN", "RP-FEB"])
    j, f = got["RP-JAN"], got["RP-FEB"]
    # January, first on the chain: referred, 0.70 on 40,000 = 28,000 (8,000 more)
    assert (j["referred"], str(j["chain_id"]), j["awaiting_referral_id"]) == (True, ref["id"], None)
    assert (j["deductible_used"], str(j["ratio"]), j["insurance_share"], j["provisional_share"]) == (
        60_000,
        "0.7000",
        28_000,
        20_000,
    )
    assert j["repriced_at"] is not None
    # February: the chain's deductible is met, so 100,000 × 0.70 = 70,000 (50,000 more)
    assert (f["referred"], f["deductible_used"], f["insurance_share"], f["provisional_share"]) == (
        True,
        0,
        70_000,
        20_000,
    )
    # January was closed: an adjusting journal for exactly the difference; February's figures just changed
    c1, h2 = w.ids["community1"], w.ids["hospital2"]
    assert await ledger(billing_engine, f"reprice:{j['id']}") == [
        ("provider.outside_care", c1, h2, 8_000),
        ("community.budget", c1, None, -8_000),
    ]
    assert await ledger(billing_engine, f"reprice:{f['id']}") == []
    # the open dispute is re-based on the charge as it now is: upheld, it posts nothing more
    async with billing_engine.connect() as conn:
        charged, version = (
            await conn.execute(
                sa.text("SELECT charged, version FROM disputes WHERE id = :i"), {"i": disputed["id"]}
            )
        ).one()
    assert (charged, version) == (28_000, disputed["version"] + 1)
    r = await c.post(
        f"/v1/disputes/{disputed['id']}/decision",
        json={"version": version, "decision": "upheld", "note": "转诊属实"},
        headers=officer(w),
    )
    assert r.status_code == 200 and r.json()["decided"] == 28_000, r.text
    assert await ledger(billing_engine, f"dispute:{disputed['id']}") == []
    feb_close = await run(c, w, f"{YEAR}/months/2/close")
    [charged] = [x for x in feb_close["journals"] if x["community_id"] == c1]
    assert charged["outside_care"] == 70_000
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/{YEAR}/trial-balance", headers=officer(w))).json()
    assert tb["balanced"] and tb["total_debit"] == tb["total_credit"]
    accounts = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert sum(accounts.values()) == 0
    st = await c.get(f"/v1/communities/{c1}/statement?year={YEAR}", headers=officer(w))
    assert st.status_code == 200, st.text
    # the HIS sees its claims final
    mine = (await c.get(f"/v1/claims?year={YEAR}", headers=his(w, "hospital2"))).json()
    assert {x["claim_no"]: (x["pricing"], x["insurance_share"]) for x in mine["items"]} == {
        "RP-JAN": ("final", 28_000),
        "RP-FEB": ("final", 70_000),
    }

    # the acceptance delivered again (the very same event twice, and a copy under a new event id that
    # the inbox does not know): nothing is priced or posted again
    before_claims = await claims_by_no(billing_engine, ["RP-JAN", "RP-FEB"])
    before_lines = await year_lines(billing_engine, YEAR)
    original = await accepted_event(ref["id"])
    copy = original.model_copy(update={"id": str(uuid.uuid4())})
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        for e in (original, original, copy):
            await producer.send_and_wait("referral.referrals", e.to_bytes(), key=ref["id"].encode())
    finally:
        await producer.stop()
    await run_billing_consumer(billing_engine, caught_up)
    assert await claims_by_no(billing_engine, ["RP-JAN", "RP-FEB"]) == before_claims
    assert await year_lines(billing_engine, YEAR) == before_lines


async def test_a_claim_on_a_referral_not_yet_accepted_is_priced_again_on_acceptance(
    billing_client: AsyncClient, billing_engine: AsyncEngine, referral_app: Any, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, KNOWN_YEAR, parameters(w, (10, 10)))
    # resident2 (community 2) referred to hospital 1; billing hears of the submission only
    ref = await submit_referral(referral_app, w, "resident2", "village2", "hospital1")
    await OutboxRelay(REFERRAL_DB, KAFKA).drain()
    await run_billing_consumer(billing_engine, referral_known(ref["id"], "submitted"))

    claims = [grassroots_claim(w, "RK-1", "resident2", "hospital1", f"{KNOWN_YEAR}-03-05", ref["id"])]
    [stored] = (await post_claims(c, w, "hospital1", claims))["claims"]
    assert (stored["pricing"], stored["insurance_share"]) == ("provisional", 20_000)

    await accept_referral(referral_app, w, ref, "hospital1")
    await OutboxRelay(REFERRAL_DB, KAFKA).drain()
    await run_billing_consumer(billing_engine, all_final(["RK-1"]))
    got = (await claims_by_no(billing_engine, ["RK-1"]))["RK-1"]
    assert (got["referred"], got["insurance_share"], got["provisional_share"]) == (True, 28_000, 20_000)
    assert await ledger(billing_engine, f"reprice:{got['id']}") == []  # March was open
    for month in (1, 2):
        await run(c, w, f"{KNOWN_YEAR}/months/{month}/close")
    march = await run(c, w, f"{KNOWN_YEAR}/months/3/close")
    [charged] = [x for x in march["journals"] if x["community_id"] == w.ids["community2"]]
    assert charged["outside_care"] == 28_000  # the month close charges the final price
    # a claim naming a referral that will never reach billing (a mistyped id) would block the year for
    # good: the officer settles it at its provisional price, as unreferred, by saying so
    lost = grassroots_claim(w, "RK-LOST", "resident2", "hospital1", f"{KNOWN_YEAR}-04-02", str(uuid.uuid4()))
    [waiting] = (await post_claims(c, w, "hospital1", [lost]))["claims"]
    assert (waiting["pricing"], waiting["insurance_share"]) == ("provisional", 20_000)
    scores = {w.ids["community1"]: "100", w.ids["community2"]: "100"}
    refused = await run(c, w, f"{KNOWN_YEAR}/settlement", {"scores": scores}, status=409)
    assert [x["claim_no"] for x in refused["claims"]] == ["RK-LOST"]
    for month in range(1, 13):
        await run(c, w, f"{KNOWN_YEAR}/prepayments/{month}")
    settled = await run(c, w, f"{KNOWN_YEAR}/settlement", {"scores": scores, "finalize_provisional": True})
    assert settled["posted"] is True
    final = (await claims_by_no(billing_engine, ["RK-LOST"]))["RK-LOST"]
    assert (final["pricing"], final["insurance_share"], final["referred"]) == ("final", 20_000, False)
