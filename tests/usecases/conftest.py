"""Fixtures of the use-case layer: `registry`, `referral` and `billing` give a test its service's database
as a `TxDatabase` (tests/usecases/rollback.py): one connection, one outer transaction rolled back when the
test ends, the use cases' own commits savepoints inside it, their events left in the outbox. No HTTP, no
Kafka, no clean-up between tests.

The databases are this layer's own (`<service>_usecases` plus TEST_DB_SUFFIX), built once per run by the
services' migrations like every other test database (tests/conftest.py), and never committed to
afterwards: each test starts from the empty schema. Being separate, they neither see nor disturb the
session-wide worlds the HTTP suites build in `<service>_test`, whatever order the suites run in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import make_engine
from shared.migrations import upgrade

from ..conftest import (
    BILLING_MIGRATIONS,
    PG,
    REFERRAL_MIGRATIONS,
    REGISTRY_MIGRATIONS,
    isolated_name,
    recreate_database,
)
from .rollback import TxDatabase, rolled_back

REGISTRY_UC_DB = f"{PG}/{isolated_name('registry_usecases')}"
REFERRAL_UC_DB = f"{PG}/{isolated_name('referral_usecases')}"
BILLING_UC_DB = f"{PG}/{isolated_name('billing_usecases')}"


async def migrated_engine(url: str, migrations: Path) -> AsyncEngine:
    """A fresh database built by the service's migrations (no topics: nothing here talks to Kafka), and an
    engine on it with the service's timeouts."""
    await recreate_database(url.rsplit("/", 1)[1])
    await asyncio.to_thread(upgrade, migrations, url)
    return make_engine(url, pool_size=2)


@pytest_asyncio.fixture(scope="session")
async def registry_uc_engine() -> AsyncIterator[AsyncEngine]:
    engine = await migrated_engine(REGISTRY_UC_DB, REGISTRY_MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def referral_uc_engine() -> AsyncIterator[AsyncEngine]:
    engine = await migrated_engine(REFERRAL_UC_DB, REFERRAL_MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def billing_uc_engine() -> AsyncIterator[AsyncEngine]:
    engine = await migrated_engine(BILLING_UC_DB, BILLING_MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def registry(registry_uc_engine: AsyncEngine) -> AsyncIterator[TxDatabase]:
    async with rolled_back(registry_uc_engine) as db:
        yield db


@pytest_asyncio.fixture
async def referral(referral_uc_engine: AsyncEngine) -> AsyncIterator[TxDatabase]:
    async with rolled_back(referral_uc_engine) as db:
        yield db


@pytest_asyncio.fixture
async def billing(billing_uc_engine: AsyncEngine) -> AsyncIterator[TxDatabase]:
    async with rolled_back(billing_uc_engine) as db:
        yield db
