"""Logins through the running gateway, as an attacker would try them (issue #11, item 4): guessing one
account's password, spraying many accounts from one address, guessing in parallel, guessing a HIS
client's secret — each is locked out with a 429 problem and Retry-After, the right password included,
and the lock is audited; while logins hash their passwords the gateway keeps answering everyone else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from redis.asyncio import Redis

from ..conftest import REDIS, isolated_name, recreate_database
from .platform import ADMIN_PASSWORD, running_platform, token

STAFF = [f"staff{n}" for n in range(8)]
HOSPITAL = "00000000-0000-0000-0000-00000000a001"  # the gateway does not check it exists


async def forget_logins() -> None:
    """The throttle's state lives in Redis, shared by every test on this Redis database: start clean, and
    leave no lock behind for the next module (they all log in from 127.0.0.1)."""
    redis = Redis.from_url(REDIS)
    try:
        keys = [k async for k in redis.scan_iter("login:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway_url(registry_db: str, referral_db: str, billing_db: str) -> AsyncIterator[str]:
    await recreate_database(isolated_name("gateway_test"))
    await forget_logins()
    with running_platform() as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            admin = await token(c, grant_type="password", username="admin", password=ADMIN_PASSWORD)
            for name in ["clerk1", "clerk2", *STAFF]:
                user = {"username": name, "password": f"{name}-password", "role": "commission_admin"}
                assert (await c.post("/admin/users", headers=admin, json=user)).status_code == 201
            client = {
                "client_id": "his-guess",
                "client_secret": "his-guess-secret-1",
                "institution_id": HOSPITAL,
            }
            assert (await c.post("/admin/clients", headers=admin, json=client)).status_code == 201
        yield url
    await forget_logins()


@pytest_asyncio.fixture(loop_scope="session")
async def gw(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await forget_logins()
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        yield c
    await forget_logins()


async def login(c: httpx.AsyncClient, username: str, password: str, **headers: str) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password}
    return await c.post("/oauth/token", data=form, headers=headers)


def assert_locked(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title_zh"] == "登录失败次数过多，请稍后再试" and body["title_en"].startswith(
        "Too many failed"
    )
    assert "access_token" not in body
    seconds = int(r.headers["Retry-After"])
    assert 1 <= seconds <= 900 and body["retry_after"] == seconds
    return seconds


async def audit_rows(c: httpx.AsyncClient, subject: str) -> list[dict[str, Any]]:
    admin = await token(c, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    for _ in range(50):  # the audit writer flushes every 0.2 s
        items: list[dict[str, Any]] = (
            await c.get("/admin/audit", headers=admin, params={"subject": subject})
        ).json()["items"]
        if items:
            return items
        await asyncio.sleep(0.1)
    return []


async def test_forty_wrong_passwords_lock_the_account_and_the_right_one_waits(gw: httpx.AsyncClient) -> None:
    answers = []
    for n in range(40):
        r = await login(gw, "clerk1", f"guess-{n}")
        answers.append(r.status_code)
        if r.status_code == 429:
            break
    assert answers == [400] * 5 + [429]  # the sixth guess is refused unchecked
    wait = assert_locked(r)
    right_while_locked = await login(gw, "clerk1", "clerk1-password")
    assert_locked(right_while_locked)  # even the right password: a brute-forcer learns nothing
    await asyncio.sleep(wait + 0.1)
    assert (await login(gw, "clerk1", "clerk1-password")).status_code == 200
    rows = await audit_rows(gw, "user:clerk1")
    assert [(e["method"], e["path"], e["status"]) for e in rows] == [("POST", "/oauth/token", 429)]


async def test_each_further_failure_doubles_the_lock(gw: httpx.AsyncClient) -> None:
    for n in range(5):
        assert (await login(gw, "clerk2", f"guess-{n}")).status_code == 400
    assert assert_locked(await login(gw, "clerk2", "guess")) == 1
    await asyncio.sleep(1.1)
    assert (await login(gw, "clerk2", "guess-6")).status_code == 400  # checked once more, and wrong
    assert assert_locked(await login(gw, "clerk2", "guess")) == 2


async def test_a_success_resets_the_account(gw: httpx.AsyncClient) -> None:
    for _ in range(2):
        for n in range(4):
            assert (await login(gw, "clerk2", f"typo-{n}")).status_code == 400
        assert (await login(gw, "clerk2", "clerk2-password")).status_code == 200
    assert (await login(gw, "clerk2", "typo")).status_code == 400  # nine failures in all, never locked


async def test_parallel_guesses_get_no_more_checks_than_sequential_ones(gw: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(login(gw, "staff0", f"guess-{n}") for n in range(30)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [400] * 5 + [429] * 25  # the fifth attempt locks before its check even starts


async def test_many_accounts_from_one_address_lock_the_address(gw: httpx.AsyncClient) -> None:
    """Password spraying: four guesses at each account stays under the account limit, not the address's."""
    codes = []
    for n in range(40):
        r = await login(gw, f"sprayed{n // 4}", f"guess-{n}")
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes == [400] * 20 + [429]
    assert_locked(r)
    assert_locked(await login(gw, "staff1", "staff1-password"))  # an untouched account, from this address
    await asyncio.sleep(1.1)
    assert (await login(gw, "staff1", "staff1-password")).status_code == 200
    rows = await audit_rows(gw, "address:127.0.0.1")
    assert rows and rows[0]["status"] == 429 and rows[0]["path"] == "/oauth/token"


async def test_a_his_client_secret_is_throttled_per_client_id(gw: httpx.AsyncClient) -> None:
    form = {"grant_type": "client_credentials", "client_id": "his-guess"}
    for n in range(5):
        r = await gw.post("/oauth/token", data=form | {"client_secret": f"guess-{n}-xxxxxxxx"})
        assert r.status_code == 400, r.text
    locked = await gw.post("/oauth/token", data=form | {"client_secret": "his-guess-secret-1"})
    assert_locked(locked)
    await asyncio.sleep(int(locked.headers["Retry-After"]) + 0.1)
    ok = await gw.post("/oauth/token", data=form | {"client_secret": "his-guess-secret-1"})
    assert ok.status_code == 200 and ok.json()["access_token"]
    assert (await audit_rows(gw, "client:his-guess"))[0]["status"] == 429


async def test_logins_hash_off_the_event_loop(gw: httpx.AsyncClient) -> None:
    """Eight logins cost over a second of argon2 together; JWKS fetches meanwhile are not held up by it.
    (With the hashing on the event loop these fetches took up to 0.4 s each, 1.7 s in all; now ~0.01 s.)"""
    one = time.monotonic()
    assert (await login(gw, "staff1", "staff1-password")).status_code == 200
    single = time.monotonic() - one

    async def timed_login(name: str) -> float:
        r = await login(gw, name, f"{name}-password")
        assert r.status_code == 200, r.text
        return time.monotonic()

    start = time.monotonic()
    logins = [asyncio.create_task(timed_login(name)) for name in STAFF]
    await asyncio.sleep(0.05)  # the logins are in the gateway now
    cheap = []
    for _ in range(10):
        t0 = time.monotonic()
        assert (await gw.get("/.well-known/jwks.json")).status_code == 200
        cheap.append(time.monotonic() - t0)
    jwks_done = time.monotonic()
    last_login = max(await asyncio.gather(*logins))
    total = last_login - start
    cheap.sort()
    print(f"one login {single:.3f}s; 8 logins {total:.3f}s; jwks meanwhile {[round(x, 3) for x in cheap]}")
    assert max(cheap) < single  # each waited less than one login, let alone their sum (≈ 8 × single)
    assert jwks_done < last_login  # and they were measured while the logins were still being checked
