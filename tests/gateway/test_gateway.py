"""Through the gateway, as real clients would: a HIS publishes a schedule with client credentials, a
village doctor logs in and refers, a resident sees only their own bookings; one merged API; and the
attacks of the gateway issue each get the right problem without leaking anything."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from ..billing.helpers import claim, parameters
from ..conftest import PG, isolated_name
from ..referral.test_referral_flows import upward
from ..referral.world import World
from .platform import ADMIN_PASSWORD, token


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def prepared(gateway_url: str, world: World) -> dict[str, Any]:
    """Accounts the commission creates: a HIS client for hospital 1, a village doctor, a resident."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        admin = await token(c, grant_type="password", username="admin", password=ADMIN_PASSWORD)
        await c.post(
            "/admin/clients",
            headers=admin,
            json={
                "client_id": "his-hospital1",
                "client_secret": "s3cret-his-hospital1",
                "institution_id": world.ids["hospital1"],
                "community_id": world.ids["community1"],
            },
        )
        await c.post(
            "/admin/users",
            headers=admin,
            json={
                "username": "vdoc1",
                "password": "village-doctor-1",
                "role": "village_doctor",
                "institution_id": world.ids["village1"],
                "community_id": world.ids["community1"],
                "practitioner_id": world.ids["vdoc1"],
            },
        )
        for n in (1, 3):
            await c.post(
                "/admin/users",
                headers=admin,
                json={
                    "username": f"resident{n}",
                    "password": f"resident-pass-{n}",
                    "role": "resident",
                    "resident_id": world.ids[f"resident{n}"],
                },
            )
        return {"admin": admin}


@pytest_asyncio.fixture
async def gw(gateway_url: str, prepared: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        yield c


async def test_his_village_doctor_and_resident_through_the_gateway(
    gw: httpx.AsyncClient, world: World, clean_referrals: None
) -> None:
    his = await token(
        gw, grant_type="client_credentials", client_id="his-hospital1", client_secret="s3cret-his-hospital1"
    )
    start = datetime.now(UTC) + timedelta(days=2)  # the services run on the real clock
    schedule = {
        "institution_id": world.ids["hospital1"],
        "department_code": "XNK",
        "resource_type": "specialist",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=4)).isoformat(),
        "capacity": 10,
    }
    session = await gw.post("/api/referral/v1/sessions", headers=his, json=schedule)
    assert session.status_code == 201, session.text
    other_hospital = await gw.post(
        "/api/referral/v1/sessions", headers=his, json={**schedule, "institution_id": world.ids["hospital2"]}
    )
    assert other_hospital.status_code == 403  # a HIS is bound to its own hospital
    doctor = await token(gw, grant_type="password", username="vdoc1", password="village-doctor-1")
    ref = await gw.post("/api/referral/v1/referrals", headers=doctor, json=upward(world))
    assert ref.status_code == 201 and ref.json()["priority"] is True, ref.text
    resident = await token(gw, grant_type="password", username="resident3", password="resident-pass-3")
    free = (
        await gw.get(
            "/api/referral/v1/sessions", headers=resident, params={"institution_id": world.ids["hospital1"]}
        )
    ).json()
    assert free["total"] >= 1
    booking = await gw.post(
        "/api/referral/v1/bookings",
        headers=resident,
        json={"session_id": session.json()["id"], "resident_id": world.ids["resident3"]},
    )
    assert booking.status_code == 201 and booking.json()["pool"] == "public", booking.text
    mine = (await gw.get("/api/referral/v1/bookings", headers=resident)).json()
    assert [b["id"] for b in mine["items"]] == [booking.json()["id"]]
    someone_else = await gw.post(
        "/api/referral/v1/bookings",
        headers=resident,
        json={"session_id": session.json()["id"], "resident_id": world.ids["resident1"]},
    )
    assert someone_else.status_code == 403
    history = (
        await gw.get(f"/api/referral/v1/residents/{world.ids['resident1']}/referrals", headers=resident)
    ).json()
    assert history["total"] == 0  # resident3 cannot see resident1's referrals


async def test_one_api_and_docs(gw: httpx.AsyncClient) -> None:
    spec = (await gw.get("/openapi.json")).json()
    paths = set(spec["paths"])
    assert {
        "/oauth/token",
        "/.well-known/jwks.json",
        "/api/registry/v1/residents",
        "/api/referral/v1/referrals",
        "/api/referral/v1/bookings",
        "/api/billing/v1/claims:batch",
    } <= paths
    docs = await gw.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def forge(claims: dict[str, Any], header: dict[str, Any]) -> str:
    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(claims)}."


async def test_bad_tokens_are_401_and_say_nothing_more(gw: httpx.AsyncClient, world: World) -> None:
    from shared.devtokens import DevSigner

    stranger = DevSigner.generate()
    claims = {"sub": "x", "role": "commission_admin", "aud": "yigongti", "exp": int(time.time()) + 60}
    real = (await token(gw, grant_type="password", username="vdoc1", password="village-doctor-1"))[
        "Authorization"
    ]
    kid = jwt.get_unverified_header(real.split()[1])["kid"]
    cases = {
        "none": {},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "alg none": {"Authorization": "Bearer " + forge(claims, {"alg": "none", "kid": kid})},
        "wrong signature": {
            "Authorization": "Bearer "
            + jwt.encode(claims, stranger.private_pem, algorithm="ES256", headers={"kid": kid})
        },
        "unknown key": {"Authorization": "Bearer " + stranger.mint("commission_admin")},
        "expired": {"Authorization": "Bearer " + stranger.mint("commission_admin", ttl=-10)},
    }
    for name, headers in cases.items():
        r = await gw.get("/api/registry/v1/institutions", headers=headers)
        assert r.status_code == 401, (name, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in r.text and "key" not in r.json().get("detail", "")
    wrong = await gw.post(
        "/oauth/token", data={"grant_type": "password", "username": "vdoc1", "password": "nope"}
    )
    unknown = await gw.post(
        "/oauth/token", data={"grant_type": "password", "username": "ghost", "password": "nope"}
    )
    assert (
        wrong.status_code == unknown.status_code == 400 and wrong.json()["title"] == unknown.json()["title"]
    )


async def test_roles_bola_and_forged_headers(gw: httpx.AsyncClient, world: World) -> None:
    resident = await token(gw, grant_type="password", username="resident1", password="resident-pass-1")
    officer_only = await gw.get(
        "/api/referral/v1/compliance",
        headers=resident,
        params={"institution_id": world.ids["hospital1"], "day_from": "2026-01-01", "day_to": "2026-12-31"},
    )
    assert officer_only.status_code == 403
    doctor = await token(gw, grant_type="password", username="vdoc1", password="village-doctor-1")
    other = await gw.get(f"/api/registry/v1/residents/{world.ids['resident2']}", headers=doctor)
    assert other.status_code == 404  # another community's resident
    forged = await gw.get(
        f"/api/registry/v1/residents/{world.ids['resident2']}",
        headers={
            **doctor,
            "X-Institution-Id": world.ids["village2"],
            "X-Community-Id": world.ids["community2"],
        },
    )
    assert forged.status_code == 404
    assert (await gw.get("/api/pharmacy/v1/anything", headers=doctor)).status_code == 404  # no such service
    # billing's figures are for the insurance agency and the commission, not a village doctor
    assert (
        await gw.get("/api/billing/v1/insurance-years/411081/2026/budgets", headers=doctor)
    ).status_code == 403
    big = await gw.post("/api/referral/v1/referrals", headers=doctor, content=b"x" * 1_100_000)
    assert big.status_code == 413


async def test_logout_revokes_and_refresh_rotates(gw: httpx.AsyncClient) -> None:
    r = await gw.post(
        "/oauth/token", data={"grant_type": "password", "username": "vdoc1", "password": "village-doctor-1"}
    )
    body = r.json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    again = await gw.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert again.status_code == 200
    reused = await gw.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert reused.status_code == 400  # a refresh token works once
    assert (
        await gw.post("/auth/logout", headers=headers, json={"refresh_token": again.json()["refresh_token"]})
    ).status_code == 204
    assert (await gw.get("/api/registry/v1/institutions", headers=headers)).status_code == 401
    dead = await gw.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": again.json()["refresh_token"]}
    )
    assert dead.status_code == 400


async def test_personal_data_access_is_audited(
    gw: httpx.AsyncClient, prepared: dict[str, Any], world: World
) -> None:
    doctor = await token(gw, grant_type="password", username="vdoc1", password="village-doctor-1")
    await gw.get(f"/api/registry/v1/residents/{world.ids['resident1']}", headers=doctor)
    await gw.get("/api/registry/v1/institutions", headers=doctor)  # not personal data: not audited
    wanted = f"/api/registry/v1/residents/{world.ids['resident1']}"
    for _ in range(50):  # the audit writer flushes in the background, a fraction of a second later
        log = (
            await gw.get("/admin/audit", headers=prepared["admin"], params={"subject": "user:vdoc1"})
        ).json()
        paths = [e["path"] for e in log["items"]]
        if wanted in paths:
            break
        await asyncio.sleep(0.1)
    assert wanted in paths
    assert not any(p.endswith("/institutions") for p in paths)
    assert (
        log["items"][0]["role"] == "village_doctor"
        and log["items"][0]["institution_id"] == world.ids["village1"]
    )
    assert (await gw.get("/admin/audit", headers=doctor)).status_code == 403


async def test_key_rotation_reaches_the_services(gw: httpx.AsyncClient, prepared: dict[str, Any]) -> None:
    old = await token(gw, grant_type="password", username="vdoc1", password="village-doctor-1")
    before = (await gw.get("/.well-known/jwks.json")).json()["keys"]
    rotated = await gw.post("/admin/keys/rotate", headers=prepared["admin"])
    assert rotated.status_code == 201
    after = (await gw.get("/.well-known/jwks.json")).json()["keys"]
    assert {k["kid"] for k in before} < {k["kid"] for k in after}  # old key still published for its grace
    doctor = await token(gw, grant_type="password", username="vdoc1", password="village-doctor-1")
    assert jwt.get_unverified_header(doctor["Authorization"].split()[1])["kid"] == rotated.json()["kid"]
    await asyncio.sleep(1.1)  # services re-fetch the JWKS at most once a second
    r = await gw.get("/api/registry/v1/institutions", headers=doctor)  # the registry fetches the new key
    assert r.status_code == 200, r.text
    engine = create_async_engine(f"{PG}/{isolated_name('gateway_test')}")
    async with engine.begin() as conn:  # age the old keys past their grace period
        await conn.execute(
            sa.text(
                "UPDATE signing_keys SET retired_at = now() - interval '2 hours' WHERE retired_at IS NOT NULL"
            )
        )
    await engine.dispose()
    await asyncio.sleep(1.5)  # the platform's gateway reloads its key ring every second
    stale = await gw.get("/api/registry/v1/institutions", headers=old)
    assert stale.status_code == 401  # a token from a rotated-out key


async def test_insurance_officer_and_his_use_billing_through_the_gateway(
    gw: httpx.AsyncClient, county: World
) -> None:
    """The billing county (its registry data reached billing through Kafka): an officer opens a year, a
    hospital's HIS posts a claim with client credentials, the officer reads the ledger."""
    admin = await token(gw, grant_type="password", username="admin", password=ADMIN_PASSWORD)  # keys rotated
    r = await gw.post(
        "/admin/clients",
        headers=admin,
        json={
            "client_id": "his-billing-township1",
            "client_secret": "s3cret-his-billing-t1",
            "institution_id": county.ids["township1"],
            "community_id": county.ids["community1"],
        },
    )
    assert r.status_code == 201, r.text
    r = await gw.post(
        "/admin/users",
        headers=admin,
        json={"username": "officer1", "password": "insurance-officer-1", "role": "insurance_officer"},
    )
    assert r.status_code == 201, r.text
    officer = await token(gw, grant_type="password", username="officer1", password="insurance-officer-1")
    his = await token(
        gw,
        grant_type="client_credentials",
        client_id="his-billing-township1",
        client_secret="s3cret-his-billing-t1",
    )
    year = "/api/billing/v1/insurance-years/411081/2023"
    r = await gw.post(f"{year}/parameters", headers=officer, json=parameters(county, (10, 10)))
    assert r.status_code == 201, r.text
    assert (await gw.post(f"{year}/budgets", headers=officer)).json()["posted"] is True
    assert (await gw.post(f"{year}/budgets", headers=his)).status_code == 403  # the gateway's fence
    body = claim(county, "GW-1", "township1", "resident1", "outpatient", "2023-04-01", 30_000)
    r = await gw.post("/api/billing/v1/claims", headers=his | {"Idempotency-Key": "gw-claim-1"}, json=body)
    assert r.status_code == 201 and r.json()["insurance_share"] == 8_500, r.text  # 85 % of (30,000 − 20,000)
    again = await gw.post(
        "/api/billing/v1/claims", headers=his | {"Idempotency-Key": "gw-claim-1"}, json=body
    )
    assert again.json()["id"] == r.json()["id"]
    tb = (await gw.get(f"{year}/trial-balance", headers=officer)).json()
    assert tb["balanced"] and tb["total_debit"] > 0
