"""The demo county loads fast, loads once, and obeys the registry rules; migrations go both ways."""

from __future__ import annotations

import asyncio
from datetime import date

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

from services.registry.demo import load_demo
from services.registry.domain.national_id import parse_national_id
from shared.migrations import downgrade, upgrade
from shared.pii import resident_owner

from ..conftest import (
    PG,
    REGISTRY_DB,
    REGISTRY_MIGRATIONS,
    isolated_name,
    recreate_database,
    registry_settings,
)


async def test_demo_county_loads_once(client: AsyncClient) -> None:
    settings = registry_settings()
    first = await asyncio.gather(
        load_demo(settings, residents=2_000, today=date(2026, 3, 1)),
        load_demo(settings, residents=2_000, today=date(2026, 3, 1)),
    )
    assert sorted(x.startswith("demo county 411081 loaded") for x in first) == [False, True]
    assert "nothing changed" in await load_demo(settings, residents=2_000)
    communities = (await client.get("/v1/communities")).json()
    assert communities["total"] == 2 and all(c["lead_institution_id"] for c in communities["items"])
    villages = (await client.get("/v1/institutions", params={"tier": "village", "limit": 1})).json()
    assert villages["total"] == 60
    residents = (await client.get("/v1/residents", params={"limit": 5})).json()
    assert residents["total"] == 2_000
    vault = settings.vault()
    engine = create_async_engine(REGISTRY_DB)
    async with engine.connect() as conn:
        sealed = (await conn.execute(sa.text("SELECT id, national_id_sealed FROM residents LIMIT 50"))).all()
        outbox = await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE topic = 'registry.residents'"))
    await engine.dispose()
    for rid, s in sealed:
        parse_national_id(
            vault.open(s, resident_owner(rid, "national_id"))
        )  # every synthetic ID passes the GB 11643 check
    assert outbox == 2_000
    contracts = (await client.get("/v1/contracts", params={"status": "active", "limit": 1})).json()
    assert contracts["total"] == 600
    summary = (await client.get("/v1/catalogues/411081/summary")).json()
    assert summary["meets_minimum"] is True


async def test_migrations_upgrade_downgrade_upgrade() -> None:
    await recreate_database(isolated_name("registry_migrations_test"))
    url = f"{PG}/{isolated_name('registry_migrations_test')}"
    await asyncio.to_thread(upgrade, REGISTRY_MIGRATIONS, url)
    await asyncio.to_thread(downgrade, REGISTRY_MIGRATIONS, url)
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        left = (
            (
                await conn.execute(
                    sa.text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert left == []
    await asyncio.to_thread(upgrade, REGISTRY_MIGRATIONS, url)
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0004"
    await engine.dispose()
