"""Shared test fixtures: a registry database built by `alembic upgrade head` on the real PostgreSQL
that scripts/test.sh starts, and an HTTP client on the real app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.registry.app import create_app
from services.registry.events import TOPICS
from services.registry.settings import RegistrySettings
from shared.clock import FixedClock
from shared.migrations import upgrade
from shared.topics import ensure_topics

PG = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:55432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:59092")
REGISTRY_DB = f"{PG}/registry_test"
REGISTRY_MIGRATIONS = Path(__file__).parents[1] / "services" / "registry" / "migrations"
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 March 2026 in Shanghai


async def recreate_database(name: str) -> None:
    admin = create_async_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


@pytest_asyncio.fixture(scope="session")
async def registry_db() -> AsyncIterator[str]:
    await recreate_database("registry_test")
    await asyncio.to_thread(upgrade, REGISTRY_MIGRATIONS, REGISTRY_DB)
    await ensure_topics(KAFKA, TOPICS.values())
    yield REGISTRY_DB


@pytest_asyncio.fixture(scope="session")
async def registry_engine(registry_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(registry_db)
    yield engine
    await engine.dispose()


def registry_settings(**overrides: object) -> RegistrySettings:
    values: dict[str, object] = {
        "database_url": REGISTRY_DB,
        "kafka_bootstrap_servers": KAFKA,
        "run_workers": False,
        "log_json": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return RegistrySettings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="session")
async def registry_app(registry_db: str):  # type: ignore[no-untyped-def]
    app = create_app(registry_settings(), clock=FixedClock(NOW))
    yield app
    await app.state.db.dispose()


TABLES = (
    "pii_access_log",
    "contracts",
    "team_members",
    "teams",
    "postings",
    "practitioners",
    "residents",
    "departments",
    "catalogue_entries",
    "idempotency_keys",
    "inbox",
    "outbox",
)


@pytest_asyncio.fixture
async def clean_registry(registry_engine: AsyncEngine) -> None:
    async with registry_engine.begin() as conn:
        await conn.execute(sa.text("UPDATE communities SET lead_institution_id = NULL"))
        await conn.execute(
            sa.text(f"TRUNCATE {', '.join(TABLES)}, institutions, communities, regions CASCADE")
        )


@pytest_asyncio.fixture
async def client(registry_app, clean_registry: None) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    async with AsyncClient(transport=ASGITransport(app=registry_app), base_url="http://registry") as c:
        yield c


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA
