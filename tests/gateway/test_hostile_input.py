"""Issue #11 as an attacker sends it, through the real gateway and services with ordinary logins: text the
database cannot store, non-ASCII digits, encoded dot segments, oversized bodies on the gateway's own
endpoints; and the proof that one caller's bad requests leave everyone else's alone and that every
personal-data call is audited, even when the audit table is briefly unwritable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from ..conftest import PG, REGISTRY_DB, isolated_name
from ..referral.world import World
from .platform import ADMIN_PASSWORD, token

GATEWAY_DB = f"{PG}/{isolated_name('gateway_test')}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def people(gateway_url: str, world: World) -> dict[str, dict[str, str]]:
    """Logged-in tokens: the commission, a resident, a family doctor and a village doctor."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        admin = await token(c, grant_type="password", username="admin", password=ADMIN_PASSWORD)
        accounts: dict[str, dict[str, Any]] = {
            "mallory": {"role": "resident", "resident_id": world.ids["resident1"]},
            "alice": {"role": "resident", "resident_id": world.ids["resident3"]},
            "gp1": {
                "role": "family_doctor",
                "institution_id": world.ids["township1"],
                "community_id": world.ids["community1"],
                "practitioner_id": world.ids["gp1"],
            },
            "vdoc": {
                "role": "village_doctor",
                "institution_id": world.ids["village1"],
                "community_id": world.ids["community1"],
                "practitioner_id": world.ids["vdoc1"],
            },
        }
        tokens = {"admin": admin}
        for name, fields in accounts.items():
            r = await c.post(
                "/admin/users",
                headers=admin,
                json={"username": name, "password": f"{name}-password", **fields},
            )
            assert r.status_code == 201, r.text
            tokens[name] = await token(c, grant_type="password", username=name, password=f"{name}-password")
        return tokens


@pytest_asyncio.fixture
async def gw(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as c:
        yield c


def is_problem(r: httpx.Response, status: int) -> bool:
    return (
        r.status_code == status
        and r.headers["content-type"] == "application/problem+json"
        and bool(r.json()["title_zh"])
        and bool(r.json()["title_en"])
    )


async def residents_named(name: str) -> int:
    engine = create_async_engine(REGISTRY_DB)
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                sa.text("SELECT count(*) FROM residents WHERE name LIKE :n"), {"n": f"{name}%"}
            )
        ).scalar_one()
    await engine.dispose()
    return int(count)


async def test_nul_bytes_and_odd_digits_are_422_and_cannot_take_a_service_down(
    gw: httpx.AsyncClient, people: dict[str, dict[str, str]], world: World
) -> None:
    """Case 1: each of these used to be a 503 or a 500, five of them opened the breaker for everyone."""
    mallory, alice = people["mallory"], people["alice"]
    body = {"name": "毒", "community_id": world.ids["community1"]}
    attacks = [
        ("GET", "/api/registry/v1/institutions?q=%00", mallory, None),
        ("GET", "/api/referral/v1/sessions?department_code=%00", mallory, None),
        ("GET", "/api/registry/v1/institutions?q=a%00b&tier=county", mallory, None),
        (
            "POST",
            "/api/registry/v1/residents",
            people["admin"],
            {**body, "national_id": "41108119900101123²"},
        ),
        (
            "POST",
            "/api/registry/v1/residents",
            people["admin"],
            {**body, "national_id": "４１１０８１１９９００１０１１２３Ｘ"},
        ),
        (
            "POST",
            "/api/registry/v1/residents",
            people["admin"],
            {**body, "national_id": "411081199001011234\x00"},
        ),
    ]
    for _ in range(3):  # 18 bad requests, well past the breaker's threshold of five
        for method, url, headers, payload in attacks:
            r = await gw.request(method, url, headers=headers, json=payload)
            assert is_problem(r, 422), (url, r.status_code, r.text)
    # text with NUL or a lone surrogate inside a JSON body: refused at validation, nothing written
    for evil in ('"毒\\u0000"', '"毒\\ud800"'):
        template = {
            "national_id": "110105194912310025",
            "name": "EVIL",
            "community_id": world.ids["community1"],
        }
        raw = json.dumps(template).replace('"EVIL"', evil)  # json.dumps would not write a lone surrogate
        r = await gw.post(
            "/api/registry/v1/residents",
            headers={**people["admin"], "content-type": "application/json"},
            content=raw.encode(),
        )
        assert is_problem(r, 422), r.text
        assert r.json()["errors"][0]["loc"][-1] == "name"
    assert await residents_named("毒") == 0
    # meanwhile everybody else is served as usual
    for _ in range(5):
        assert (await gw.get("/api/registry/v1/institutions", headers=alice)).status_code == 200
        assert (await gw.get("/api/referral/v1/sessions", headers=alice)).status_code == 200


async def test_encoded_dot_segments_cannot_walk_around_the_fence(
    gw: httpx.AsyncClient, people: dict[str, dict[str, str]], world: World, gateway_url: str
) -> None:
    """Case 2: the resident reached the staff-only coverage, the family doctor read a record unaudited."""
    resident, doctor = people["mallory"], people["gp1"]
    direct = await gw.get("/api/registry/v1/coverage/counties/411081", headers=resident)
    assert direct.status_code == 403
    rid = world.ids["resident1"]
    walks = [
        "/api/registry/v1/residents/..%2Fcoverage%2Fcounties%2F411081",
        "/api/registry/v1/residents/%2e%2e/coverage/counties/411081",
        "/api/registry/v1/residents/%2E%2E%2Fcoverage/counties/411081",
        "/api/registry/v1/residents/.%2e/coverage/counties/411081",
        "/api/registry/v1/residents/..%5ccoverage%5ccounties%5c411081",
        "/api/registry/v1/residents/..%252Fcoverage",
        f"/api/registry/v1/regions/..%2Fresidents%2F{rid}",
        f"/api/registry/v1//residents/{rid}",
        "/api/registry/v1/residents/" + "a" * 600,  # would not fit the audit column: it stalled the audit
    ]
    for path in walks:
        for who in (resident, doctor):
            r = await gw.get(httpx.URL(gateway_url + path), headers=who)
            assert is_problem(r, 400), (path, r.status_code, r.text)
    # raw dot segments (httpx would remove them, so these go over a bare socket)
    for path in (
        "/api/registry/v1/residents/../coverage/counties/411081",
        f"/api/registry/v1/regions/../residents/{rid}",
    ):
        status = await raw_get(gateway_url, path, resident["Authorization"])
        assert status == 400, path
    # the way that is allowed still works, and is audited under the path the policy matched
    ok = await gw.get(f"/api/registry/v1/%72esidents/{rid}", headers=doctor)
    assert ok.status_code == 200, ok.text
    rows = await audit_rows("user:gp1")
    assert (f"/api/registry/v1/residents/{rid}", 200) in rows


async def raw_get(base: str, path: str, authorization: str) -> int:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def audit_rows(subject: str, wait_for: int = 1) -> list[tuple[str, int]]:
    """The audit rows of `subject` (waiting up to 5 s for the gateway's writer to flush them)."""
    engine = create_async_engine(GATEWAY_DB)
    rows: list[tuple[str, int]] = []
    try:
        for _ in range(50):
            async with engine.connect() as conn:
                result = await conn.execute(
                    sa.text("SELECT path, status FROM audit_log WHERE subject = :s ORDER BY id"),
                    {"s": subject},
                )
                rows = [(r.path, r.status) for r in result]
            if len(rows) >= wait_for:
                break
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    return rows


async def test_an_unwritable_audit_table_never_fails_a_completed_write(
    gw: httpx.AsyncClient, people: dict[str, dict[str, str]], world: World
) -> None:
    """Case 3: a completed POST used to become a 503 (which the client retries) when the audit failed."""
    engine = create_async_engine(GATEWAY_DB, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
    try:
        r = await gw.post(
            "/api/registry/v1/residents",
            headers=people["vdoc"],
            json={
                "national_id": "11010519491231002X",
                "name": "审计测试",
                "community_id": world.ids["community1"],
            },
        )
        assert r.status_code == 201, r.text
        read = await gw.get(f"/api/registry/v1/residents/{r.json()['id']}", headers=people["vdoc"])
        assert read.status_code == 200
        await asyncio.sleep(0.5)  # the writer tries, fails, and keeps the rows
    finally:
        async with engine.connect() as conn:
            await conn.execute(sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
        await engine.dispose()
    rows = await audit_rows("user:vdoc", wait_for=2)
    assert ("/api/registry/v1/residents", 201) in rows
    assert (f"/api/registry/v1/residents/{r.json()['id']}", 200) in rows


async def test_the_gateways_own_endpoints_refuse_bodies_over_the_limit(
    gw: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    """Case 8: /admin/users and /oauth/token parsed bodies of any size."""
    huge = {"username": "big", "password": "x" * 1_100_000, "role": "resident"}
    r = await gw.post("/admin/users", headers=people["admin"], json=huge)
    assert is_problem(r, 413), r.text
    form = {"grant_type": "password", "username": "admin", "password": "p" * 1_100_000}
    assert is_problem(await gw.post("/oauth/token", data=form), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size shows only while streaming
        for _ in range(20):
            yield b"x" * 100_000

    streamed = await gw.post(
        "/admin/users", headers={**people["admin"], "content-type": "application/json"}, content=chunks()
    )
    assert is_problem(streamed, 413), streamed.text
    assert (await gw.get("/admin/audit", headers=people["admin"])).status_code == 200  # still serving


async def test_a_resident_id_of_non_ascii_digits_is_refused_everywhere(
    gw: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    """Searching by such an ID (a lookup hash of it would never match) is the same 422 as storing it."""
    r = await gw.get(
        "/api/registry/v1/residents", headers=people["admin"], params={"national_id": "41108119900101123²"}
    )
    assert is_problem(r, 422), r.text
    assert "Traceback" not in json.dumps(r.json())


async def test_personal_data_calls_are_audited_whatever_the_upstream_answered(
    gateway: tuple[httpx.AsyncClient, int],
) -> None:
    """Case 3: the row used to be written only after a successful upstream call. Here the registry hangs
    (504) and the referral service is down (503, then the open breaker's 503)."""
    c, _ = gateway
    app = c._transport.app  # type: ignore[attr-defined]
    assert (await c.get("/api/registry/v1/residents/42")).status_code == 504
    for _ in range(6):
        assert (await c.get("/api/referral/v1/referrals")).status_code == 503
    assert (await c.get("/api/registry/v1/institutions")).status_code == 504  # not personal data
    await app.state.audit.close()  # flush what is queued
    async with app.state.db.read() as s:
        rows = (await s.execute(sa.text("SELECT path, status FROM audit_log ORDER BY id"))).all()
    assert [(r.path, r.status) for r in rows] == [("/api/registry/v1/residents/42", 504)] + [
        ("/api/referral/v1/referrals", 503)
    ] * 6


async def test_one_callers_idempotency_key_never_answers_another(
    gw: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    """Case 6: keys were global — the second caller to send a key got the first caller's stored reply (or a
    422 for "reused"). Now each caller's key is its own, per route."""
    admin = people["admin"]
    r = await gw.post(
        "/admin/users",
        headers=admin,
        json={"username": "admin2", "password": "admin2-password", "role": "commission_admin"},
    )
    assert r.status_code == 201, r.text
    other = await token(gw, grant_type="password", username="admin2", password="admin2-password")
    key = {"Idempotency-Key": "same-key-everyone-uses"}
    first = await gw.post(
        "/api/registry/v1/regions",
        headers=admin | key,
        json={"code": "420000", "name": "湖北省", "level": "province"},
    )
    second = await gw.post(
        "/api/registry/v1/regions",
        headers=other | key,
        json={"code": "430000", "name": "湖南省", "level": "province"},
    )
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["code"] == "420000" and second.json()["code"] == "430000"
    assert "idempotent-replayed" not in second.headers
    again = await gw.post(
        "/api/registry/v1/regions",
        headers=other | key,
        json={"code": "430000", "name": "湖南省", "level": "province"},
    )
    assert again.headers["idempotent-replayed"] == "true" and again.json() == second.json()
