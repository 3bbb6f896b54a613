"""The slot rules are the county's: when the health commission changes the hold time and the release
cut-off of its county (PUT /v1/counties/{county}/referral-settings), holds and the release of unbooked
family-doctor slots in that county's hospitals follow, while a hospital of another county keeps the
deployment's defaults (10-minute holds, 24 h cut-off). Each process remembers a county's rules for two
seconds, so a booking attempt does not read them again, and an attempt refused from the "pools were
full" memory reads nothing of them at all; a change through this process counts at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referral.usecases.county_rules import forget_rules
from shared.devtokens import DevSigner

from ..conftest import NOW, admin_headers
from ..integration.county import COUNTY, post
from .test_deadlines import run_sweep
from .test_slots import book, publish, session_body
from .world import World, ship_registry_events

OTHER_COUNTY = "411082"


@pytest_asyncio.fixture(scope="session")
async def other_hospital(
    registry_app: Any, referral_engine: AsyncEngine, signer: DevSigner, world: World
) -> str:
    """A county hospital of a neighbouring county, built in the registry and shipped like the world."""
    tag = uuid.uuid4().hex[:4].upper()
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(signer)
    ) as client:
        region = {"code": OTHER_COUNTY, "name": "长葛市", "level": "county", "parent_code": "410000"}
        assert (await client.post("/v1/regions", json=region)).status_code in (201, 409)
        community = await post(
            client, "/v1/communities", {"code": f"{tag}C9", "name": "长葛医共体", "county_code": OTHER_COUNTY}
        )
        hospital = await post(
            client,
            "/v1/institutions",
            {
                "code": f"{tag}H9",
                "name": "长葛市人民医院",
                "tier": "county",
                "kind": "general",
                "region_code": OTHER_COUNTY,
                "community_id": community["id"],
                "membership": "lead",
                "departments": [{"code": "XNK", "name": "心内科"}],
            },
        )
    await ship_registry_events(referral_engine, {hospital["id"]})
    return str(hospital["id"])


async def publish_there(c: AsyncClient, w: World, hospital: str, starts_in: timedelta) -> dict[str, Any]:
    his = {
        "Authorization": "Bearer " + w.signer.mint("his_system", subject="his@other", institution_id=hospital)
    }
    body = {
        **session_body(w, capacity=10, starts_in=starts_in),
        "institution_id": hospital,
        "practitioner_id": None,
    }
    r = await c.post("/v1/sessions", json=body, headers=his)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def hold(c: AsyncClient, w: World, session: dict[str, Any]) -> dict[str, Any]:
    r = await c.post(
        "/v1/holds",
        json={"session_id": session["id"], "resident_id": w.ids["resident3"]},
        headers=w.token("resident", resident="resident3"),
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def change(c: AsyncClient, w: World, changes: dict[str, Any]) -> None:
    r = await c.put(
        f"/v1/counties/{COUNTY}/referral-settings",
        json={"changes": changes, "reason": "县卫健委 2026 第 5 号文"},
        headers=w.token("commission_admin"),
    )
    assert r.status_code == 200, r.text


async def free_of(c: AsyncClient, w: World, hospital: str) -> dict[str, int]:
    found = (
        await c.get(
            "/v1/sessions",
            params={"institution_id": hospital},
            headers=w.token("resident", resident="resident3"),
        )
    ).json()["items"]
    assert len(found) == 1
    free: dict[str, int] = found[0]["free"]
    return free


async def test_a_hold_lasts_as_long_as_the_county_says(
    referral_client: AsyncClient, world: World, referral_app: Any, other_hospital: str
) -> None:
    c, w = referral_client, world
    await change(c, w, {"hold_minutes": 30})
    here = await hold(c, w, await publish(c, w, capacity=10))
    there = await hold(c, w, await publish_there(c, w, other_hospital, timedelta(days=3)))
    assert at(here["expires_at"]) == NOW + timedelta(minutes=30)
    assert at(there["expires_at"]) == NOW + timedelta(minutes=10)  # the deployment's default
    referral_app.state.clock.at = NOW + timedelta(minutes=20)
    me = w.token("resident", resident="resident3")
    assert (await c.post(f"/v1/holds/{here['hold_id']}/confirm", headers=me)).status_code == 201
    late = await c.post(f"/v1/holds/{there['hold_id']}/confirm", headers=me)
    assert late.status_code == 409 and late.json()["type"].endswith("hold-expired")


async def test_unbooked_family_doctor_slots_are_released_at_the_county_cut_off(
    referral_client: AsyncClient, world: World, referral_app: Any, other_hospital: str
) -> None:
    c, w = referral_client, world
    await change(c, w, {"release_before_hours": 48})
    await publish(c, w, capacity=10, starts_in=timedelta(hours=40))  # 1 priority, 3 family doctor, 6 public
    await publish_there(c, w, other_hospital, timedelta(hours=40))
    assert (await run_sweep(referral_app, NOW)).released_slots == 4  # 40 h ahead: inside 48 h, not 24 h
    assert await free_of(c, w, w.ids["hospital1"]) == {"public": 10}
    assert await free_of(c, w, other_hospital) == {"priority": 1, "family_doctor": 3, "public": 6}
    assert (await run_sweep(referral_app, NOW + timedelta(hours=17))).released_slots == 4  # 23 h ahead
    assert await free_of(c, w, other_hospital) == {"public": 10}


async def test_find_shows_when_each_pool_opens_by_the_sessions_county(
    referral_client: AsyncClient, world: World, other_hospital: str
) -> None:
    c, w = referral_client, world
    await change(c, w, {"public_opens_before_days": 3, "family_doctor_head_start_days": 2})
    here = await publish(c, w, capacity=10, starts_in=timedelta(days=20))
    there = await publish_there(c, w, other_hospital, timedelta(days=20))
    found = (
        await c.get("/v1/sessions", headers=w.token("resident", resident="resident3"), params={"limit": 200})
    ).json()["items"]
    opens = {x["id"]: x["opens_at"] for x in found}
    starts = at(here["starts_at"])
    assert at(opens[here["id"]]["public"]) == starts - timedelta(days=3)
    assert at(opens[here["id"]]["family_doctor"]) == starts - timedelta(days=5)
    assert at(opens[there["id"]]["public"]) == at(there["starts_at"]) - timedelta(days=7)  # the default


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """The SQL the app's database runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = app.state.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def reads_rules(seen: list[str]) -> int:
    return sum("county_policies" in x for x in seen)


async def test_a_booking_attempt_does_not_read_the_countys_rules_again(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    await change(c, w, {"hold_minutes": 15})
    s = await publish(c, w, capacity=10)
    await book(c, w.token("resident", resident="resident3"), s, w.ids["resident3"])

    with statements(referral_app) as seen:
        await book(c, w.token("resident", resident="resident2"), s, w.ids["resident2"])

    assert reads_rules(seen) == 0 and any("UPDATE slots" in x for x in seen)


async def test_an_attempt_refused_from_memory_reads_no_rules(
    referral_client: AsyncClient, world: World, referral_app: Any
) -> None:
    c, w = referral_client, world
    s = await publish(c, w, capacity=2)  # one public slot
    await book(c, w.token("resident", resident="resident3"), s, w.ids["resident3"])
    full = await book(c, w.token("resident", resident="resident2"), s, w.ids["resident2"], status=409)
    assert full["type"].endswith("no-free-slot")  # the public pool is remembered full for a second
    forget_rules()  # as when another county's rush pushed them out, or two seconds went by

    with statements(referral_app) as seen:
        again = await book(c, w.token("resident", resident="resident1"), s, w.ids["resident1"], status=409)

    assert again["type"].endswith("no-free-slot")
    assert reads_rules(seen) == 0 and not any("UPDATE slots" in x for x in seen)


async def test_a_change_counts_at_once_in_the_process_that_made_it(
    referral_client: AsyncClient, world: World
) -> None:
    c, w = referral_client, world
    first = await hold(c, w, await publish(c, w, capacity=10))  # the rules are remembered now
    assert at(first["expires_at"]) == NOW + timedelta(minutes=10)
    await change(c, w, {"hold_minutes": 25})

    second = await hold(c, w, await publish(c, w, capacity=10, starts_in=timedelta(days=4)))

    assert at(second["expires_at"]) == NOW + timedelta(minutes=25)
