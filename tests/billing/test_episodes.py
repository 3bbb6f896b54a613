"""The way home is the same episode (issue #14, points 2 and 16): a resident referred up from the township
to the county hospital and then back down, the downward referral continuing the upward one, pays the
deductible once — billing hears of both referrals through Kafka (referral events of contract version 3)
and prices the HIS's claims over HTTP. A claim whose chain continues a referral billing has not heard of
yet is priced provisionally and priced again when that referral arrives. Tiers of helpers.TIERS: township
0.85 with a 20,000-fen deductible, county 0.70 with 60,000."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import contracts
from shared.contracts import referral as ref

from ..conftest import KAFKA
from ..referral.world import World
from .helpers import claim, his, open_year, parameters, post_claims
from .test_repricing import all_final, claims_by_no, referral_known
from .world import run_billing_consumer

YEAR = 2021
WAIT_YEAR = 2019
FULL_YEAR = 2020  # a county that charges both ways
ACTIONS = {"arrived": "arrive", "completed": "complete", "accepted": "accept"}
TIERS = {"hospital": "county", "township": "township"}


async def publish_referral(
    w: World,
    resident: str,
    direction: str,
    origin: str,
    destination: str,
    status: str,
    continues: str | None = None,
    ident: str | None = None,
) -> str:
    """A referral's snapshot as the referral service publishes it after a step, straight to the topic."""
    ident = ident or str(uuid.uuid4())
    now = datetime(2021, 3, 1, tzinfo=UTC)
    community = w.ids["community" + origin[-1]]
    data = ref.Referral(
        id=uuid.UUID(ident),
        direction=direction,
        scope="intra_community",
        status=status,
        urgency="routine",
        priority=False,
        resident_id=w.ids[resident],
        resident_community_id=community,
        from_institution_id=w.ids[origin],
        from_tier=TIERS[origin[:-1]],
        from_community_id=community,
        from_practitioner_id=None,
        to_institution_id=w.ids[destination],
        to_tier=TIERS[destination[:-1]],
        to_community_id=community,
        to_department_code=None,
        approver_institution_id=None,
        diagnosis_icd10="I63.9",
        grassroots_reason=None,
        downward_reason="rehabilitation" if direction == "down" else None,
        emergency_review_pending=False,
        replaces_referral_id=None,
        continues_referral_id=uuid.UUID(continues) if continues else None,
        submitted_at=now,
        response_due_at=None,
        escalated_at=None,
        appointment_at=None,
        arrived_at=now if status in ("arrived", "completed") else None,
        completed_at=now if status == "completed" else None,
        discharge_summary_provided=False,
        answer_code=None,
        created_at=now,
        updated_at=now,
        version=4,
        event=ref.ReferralStep(action=ACTIONS[status], from_status=None, role="specialist", detail={}),
    )
    event = contracts.event(
        f"referral.{ACTIONS[status]}", data, source=ref.SOURCE, subject=f"referral/{ident}", key=ident
    )
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        await producer.send_and_wait(event.topic, event.envelope.to_bytes(), key=ident.encode())
    finally:
        await producer.stop()
    return ident


async def heard(engine: AsyncEngine, ident: str, status: str) -> None:
    await run_billing_consumer(engine, referral_known(ident, status))


def visit(
    w: World, no: str, at: str, resident: str, day: str, eligible: int, referral: str
) -> dict[str, Any]:
    return claim(
        w, no, at, resident, "outpatient", day, eligible, diagnosis_icd10="I63.9", referral_id=referral
    )


async def test_referred_up_and_back_down_the_patient_pays_one_deductible(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, YEAR, parameters(w, (10, 10)))  # the defaults: 上转补差, 下转免起付线
    up = await publish_referral(w, "resident1", "up", "township1", "hospital1", "arrived")
    await heard(billing_engine, up, "arrived")
    at_county = visit(w, "EP-UP", "hospital1", "resident1", f"{YEAR}-03-10", 100_000, up)
    [county_claim] = (await post_claims(c, w, "hospital1", [at_county]))["claims"]
    assert (county_claim["referred"], county_claim["deductible_used"], county_claim["insurance_share"]) == (
        True,
        60_000,
        28_000,  # 0.70 × (100,000 − 60,000)
    )

    # the county hospital sends the recovering patient home, continuing the upward referral
    down = await publish_referral(w, "resident1", "down", "hospital1", "township1", "accepted", continues=up)
    await heard(billing_engine, down, "accepted")
    at_home = visit(w, "EP-DOWN", "township1", "resident1", f"{YEAR}-03-20", 50_000, down)
    [home] = (await post_claims(c, w, "township1", [at_home]))["claims"]

    # no second deductible: 0.85 × 50,000 (as a chain of its own it would pay 20,000 first: 25,500)
    assert (home["referred"], home["pricing"], home["deductible_used"], home["insurance_share"]) == (
        True,
        "final",
        0,
        42_500,
    )
    stored = await claims_by_no(billing_engine, ["EP-UP", "EP-DOWN"])
    assert {n: str(x["chain_id"]) for n, x in stored.items()} == {"EP-UP": up, "EP-DOWN": up}
    # the claim says which leg of the episode it is on, which decided its deductible
    assert (county_claim["leg"], home["leg"]) == ("up", "down")
    r = await c.get(f"/v1/claims/{home['id']}", headers=his(w, "township1"))
    assert r.status_code == 200 and r.json()["leg"] == "down", r.text


async def test_a_claim_on_the_way_home_before_billing_heard_of_the_way_up_waits_for_it(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, WAIT_YEAR, parameters(w, (10, 10)))
    upward = str(uuid.uuid4())  # the upward referral's events have not reached billing yet
    down = await publish_referral(
        w, "resident3", "down", "hospital1", "township1", "accepted", continues=upward
    )
    await heard(billing_engine, down, "accepted")
    at_home = visit(w, "EP-WAIT", "township1", "resident3", f"{WAIT_YEAR}-04-02", 50_000, down)

    [waiting] = (await post_claims(c, w, "township1", [at_home]))["claims"]

    # priced as unreferred for now (20,000 deductible, 0.85 × 30,000), waiting for the upward referral
    assert (waiting["pricing"], waiting["awaiting_referral_id"], waiting["insurance_share"]) == (
        "provisional",
        upward,
        25_500,
    )
    await publish_referral(w, "resident3", "up", "township1", "hospital1", "completed", ident=upward)
    await run_billing_consumer(billing_engine, all_final(["EP-WAIT"]))
    final = (await claims_by_no(billing_engine, ["EP-WAIT"]))["EP-WAIT"]
    assert (
        final["referred"],
        str(final["chain_id"]),
        final["deductible_used"],
        final["insurance_share"],
    ) == (
        True,
        upward,
        0,
        42_500,
    )


async def test_a_county_may_charge_the_whole_deductible_both_ways(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    body = parameters(w, (10, 10), upward_deductible="full", downward_deductible="full")
    await open_year(c, w, FULL_YEAR, body)
    up = await publish_referral(w, "resident2", "up", "township2", "hospital2", "completed")
    await heard(billing_engine, up, "completed")
    # the sending township names the referral it sent: its deductible (20,000) is met in the chain
    sent = visit(w, "FULL-SENT", "township2", "resident2", f"{FULL_YEAR}-05-01", 30_000, up)
    [township] = (await post_claims(c, w, "township2", [sent]))["claims"]
    assert (township["referred"], township["deductible_used"]) == (False, 20_000)
    at_county = visit(w, "FULL-UP", "hospital2", "resident2", f"{FULL_YEAR}-05-03", 100_000, up)
    [county_claim] = (await post_claims(c, w, "hospital2", [at_county]))["claims"]
    assert (county_claim["deductible_used"], county_claim["insurance_share"]) == (
        60_000,
        28_000,
    )  # not 40,000
    down = await publish_referral(w, "resident2", "down", "hospital2", "township2", "accepted", continues=up)
    await heard(billing_engine, down, "accepted")
    home = [
        visit(w, f"FULL-DOWN-{n}", "township2", "resident2", f"{FULL_YEAR}-05-2{n}", 50_000, down)
        for n in (1, 2)
    ]
    first, second = (await post_claims(c, w, "township2", home))["claims"]
    assert (first["deductible_used"], first["insurance_share"]) == (20_000, 25_500)  # once on the way home
    assert (second["deductible_used"], second["insurance_share"]) == (0, 42_500)
