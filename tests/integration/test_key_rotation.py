"""Key rotation end to end, on the real PostgreSQL: a county sealed under key A is rotated to key B
(A kept as an old key), re-sealed by the operator's command, and then, with only B configured, every
resident's identity still opens through the API and lookup by national ID still finds them. The
gateway's signing keys survive a KEY_SECRET rotation the same way."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

from services.gateway import models as gm
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import hasher
from services.gateway.settings import GatewaySettings
from services.registry.app import create_app as create_registry
from services.registry.demo import load_demo
from services.registry.events import TOPICS
from services.registry.settings import RegistrySettings
from shared.devtokens import DevSigner
from shared.migrations import upgrade
from shared.pii import PiiVault, resident_owner

from ..conftest import (
    PG,
    REDIS,
    REGISTRY_MIGRATIONS,
    admin_headers,
    isolated_name,
    migrated_database,
    recreate_database,
    service_settings,
)

ROOT = Path(__file__).parents[2]
KEY_A, KEY_B = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
RESIDENTS = 300


def cli(service: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's command, as a process with exactly these secrets in its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PII_KEY", "PII_OLD_KEYS", "KEY_SECRET")}
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}", *args],
        env={**clean, "KEY_OLD_SECRETS": "", "ENVIRONMENT": "production", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@asynccontextmanager
async def serving(app: FastAPI, headers: dict[str, str] | None = None) -> AsyncIterator[AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test", headers=headers) as c,
    ):
        yield c


def registry(url: str, signer: DevSigner, key: str, old: str = "") -> FastAPI:
    settings = service_settings(
        RegistrySettings, url, auth_jwks=json.dumps(signer.jwks()), pii_key=key, pii_old_keys=old
    )
    return create_registry(settings)


def legacy(key: str, value: str) -> tuple[bytes, str]:
    """A value sealed and hashed the way the vault did before key ids (to prove old databases work)."""
    raw = base64.b64decode(key)
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(hashlib.sha256(b"enc" + raw).digest()).encrypt(nonce, value.encode(), None)
    mac = hmac.new(hashlib.sha256(b"mac" + raw).digest(), value.encode(), hashlib.sha256).hexdigest()
    return sealed, mac


async def test_registry_rotation_reseal_then_only_the_new_key(signer: DevSigner) -> None:
    url = await migrated_database(
        f"{PG}/{isolated_name('registry_rotation_test')}", REGISTRY_MIGRATIONS, TOPICS.values()
    )
    settings_a = service_settings(RegistrySettings, url, pii_key=KEY_A)
    assert "loaded" in await load_demo(settings_a, residents=RESIDENTS, today=date(2026, 3, 1))
    engine = create_async_engine(url)
    a = PiiVault(KEY_A)
    async with engine.begin() as conn:
        rows = (
            await conn.execute(sa.text("SELECT id, national_id_sealed, phone_sealed FROM residents"))
        ).all()
        truth = {
            r.id: (
                a.open(r.national_id_sealed, resident_owner(r.id, "national_id")),
                a.open(r.phone_sealed, resident_owner(r.id, "phone")),
            )
            for r in rows
        }
        old_one = rows[0].id  # one resident as an old database has it: legacy format, no key id
        nid_sealed, nid_hash = legacy(KEY_A, truth[old_one][0])
        phone_sealed, phone_hash = legacy(KEY_A, truth[old_one][1])
        await conn.execute(
            sa.text(
                "UPDATE residents SET national_id_sealed = :a, national_id_hash = :b, phone_sealed = :c, "
                "phone_hash = :d WHERE id = :id"
            ),
            {"a": nid_sealed, "b": nid_hash, "c": phone_sealed, "d": phone_hash, "id": old_one},
        )
    assert len(truth) == RESIDENTS

    # mid-rotation: B seals, A still opens, lookups and the one-resident-per-ID rule see both
    some = list(truth)[1]
    async with serving(registry(url, signer, KEY_B, KEY_A), admin_headers(signer)) as api:
        for rid in (old_one, some):
            assert (await api.get(f"/v1/residents/{rid}/identity")).json()["national_id"] == truth[rid][0]
            found = (await api.get("/v1/residents", params={"national_id": truth[rid][0]})).json()["items"]
            assert [r["id"] for r in found] == [str(rid)]
            found = (await api.get("/v1/residents", params={"phone": truth[rid][1]})).json()["items"]
            assert str(rid) in [r["id"] for r in found]
        community = (await api.get(f"/v1/residents/{some}")).json()["community_id"]
        for rid in (old_one, some):  # the same person again, whichever key their row is under
            again = {"national_id": truth[rid][0], "name": "重复", "community_id": community}
            assert (await api.post("/v1/residents", json=again)).status_code == 409
        res = (await api.get(f"/v1/residents/{some}")).json()
        patched = await api.patch(
            f"/v1/residents/{some}", json={"phone": "13900001111", "version": res["version"]}
        )
        assert patched.status_code == 200, patched.text
        truth[some] = (truth[some][0], "13900001111")  # now a row with one field under B, one under A

    # without its keys the command refuses to start, and says what to set
    refused = cli("registry", {"DATABASE_URL": url}, "reseal")
    assert (
        refused.returncode != 0
        and "PII_KEY is not set" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    # the old key forgotten: it stops at the first resident it cannot open, and changes nothing
    forgot = cli("registry", {"DATABASE_URL": url, "PII_KEY": KEY_B}, "reseal")
    assert forgot.returncode != 0 and "add the key that sealed it to PII_OLD_KEYS" in forgot.stderr

    env = {"DATABASE_URL": url, "PII_KEY": KEY_B, "PII_OLD_KEYS": KEY_A}
    done = cli("registry", env, "reseal", "--batch", "64")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{RESIDENTS} residents re-sealed under key {PiiVault(KEY_B).key_id}")
    again_run = cli("registry", env, "reseal")
    assert again_run.stdout.startswith("0 residents re-sealed"), again_run.stderr  # idempotent

    b = PiiVault(KEY_B)
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT * FROM residents"))).mappings().all()
    await engine.dispose()
    for r in stored:
        assert b.is_current(r["national_id_sealed"]) and b.is_current(r["phone_sealed"])
        assert r["national_id_hash"] == b.lookup_hash(truth[r["id"]][0]) and r["version"] == (
            2 if r["id"] == some else 1
        )

    # only B from now on: every identity opens, every national ID is found
    async with serving(registry(url, signer, KEY_B), admin_headers(signer)) as api:

        async def check(rid: uuid.UUID) -> None:
            identity = await api.get(f"/v1/residents/{rid}/identity")
            assert identity.status_code == 200 and identity.json() == {
                "id": str(rid),
                "national_id": truth[rid][0],
                "phone": truth[rid][1],
            }
            found = (await api.get("/v1/residents", params={"national_id": truth[rid][0]})).json()
            assert [r["id"] for r in found["items"]] == [str(rid)]

        for rid in truth:
            await check(rid)


async def test_gateway_key_secret_rotation_keeps_its_signing_keys() -> None:
    name = isolated_name("gateway_rotation_test")
    await recreate_database(name)
    url = f"{PG}/{name}"
    await asyncio.to_thread(upgrade, ROOT / "services/gateway/migrations", url)

    def gateway(key: str) -> FastAPI:
        return create_gateway(service_settings(GatewaySettings, url, key_secret=key, redis_url=REDIS))

    login = {"grant_type": "password", "username": "admin", "password": "admin-password"}
    first_app = gateway(KEY_A)
    async with serving(first_app) as gw:
        async with first_app.state.db.uow() as uow:
            uow.session.add(
                gm.User(
                    username="admin", password_hash=hasher.hash("admin-password"), role="commission_admin"
                )
            )
            await uow.commit()
        first = await token(gw, login)
        auth = {"Authorization": f"Bearer {first}"}
        assert (await gw.post("/admin/keys/rotate", headers=auth)).status_code == 201
        signing = jwt.get_unverified_header(await token(gw, login))["kid"]
        jwks = (await gw.get("/.well-known/jwks.json")).json()
    assert len(jwks["keys"]) == 2  # the retired key is still published

    env = {"DATABASE_URL": url, "KEY_SECRET": KEY_B, "KEY_OLD_SECRETS": KEY_A}
    done = cli("gateway", env, "reseal")
    assert done.returncode == 0 and done.stdout.startswith("2 signing keys re-sealed"), done.stderr
    assert cli("gateway", env, "reseal").stdout.startswith("0 signing keys")

    async with serving(gateway(KEY_B)) as gw:  # only the new KEY_SECRET
        issued = await token(gw, login)
        assert jwt.get_unverified_header(issued)["kid"] == signing  # the same key, opened, not replaced
        assert (await gw.get("/.well-known/jwks.json")).json() == jwks
        for bearer in (issued, first):  # tokens from before the rotation still verify
            assert (
                await gw.get("/admin/audit", headers={"Authorization": f"Bearer {bearer}"})
            ).status_code == 200


async def token(client: AsyncClient, form: dict[str, Any]) -> str:
    r = await client.post("/oauth/token", data=form)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])
