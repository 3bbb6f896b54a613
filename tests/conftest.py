"""Shared test fixtures: a registry database built by `alembic upgrade head` on the real PostgreSQL
that scripts/test.sh starts, and an HTTP client on the real app."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.billing.app import create_app as create_billing_app
from services.billing.events import TOPICS as BILLING_TOPICS
from services.billing.readmodel import CONSUMED_TOPICS as BILLING_CONSUMED
from services.billing.settings import BillingSettings
from services.referral.app import create_app as create_referral_app
from services.referral.events import TOPICS as REFERRAL_TOPICS
from services.referral.settings import ReferralSettings
from services.registry.app import create_app
from services.registry.events import TOPICS
from services.registry.settings import RegistrySettings
from shared.clock import FixedClock
from shared.devtokens import DevSigner
from shared.migrations import upgrade
from shared.settings import ServiceSettings
from shared.topics import ensure_topics

# SIGTERM (a CI timeout, an interrupted `make test` stopping its background runs) unwinds like Ctrl-C, so
# fixtures tear down: the processes and servers they started are stopped, not orphaned
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

PG = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:25432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:26379/0")
# two test runs on one machine (two engineers, or helpers) keep apart with their own suffix
DB_SUFFIX = os.environ.get("TEST_DB_SUFFIX", "")


def isolated_name(name: str) -> str:
    return f"{name}{DB_SUFFIX}"


REGISTRY_DB = f"{PG}/{isolated_name('registry_test')}"
REGISTRY_MIGRATIONS = Path(__file__).parents[1] / "services" / "registry" / "migrations"
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 March 2026 in Shanghai


async def recreate_database(name: str) -> None:
    admin = create_async_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


async def migrated_database(url: str, migrations: Path, topics: Iterable[str]) -> str:
    """A fresh database built by the service's migrations (never from the models), and its topics."""
    await recreate_database(url.rsplit("/", 1)[1])
    await asyncio.to_thread(upgrade, migrations, url)
    await ensure_topics(KAFKA, topics)
    return url


@pytest_asyncio.fixture(scope="session")
async def registry_db() -> AsyncIterator[str]:
    yield await migrated_database(REGISTRY_DB, REGISTRY_MIGRATIONS, TOPICS.values())


@pytest_asyncio.fixture(scope="session")
async def registry_engine(registry_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(registry_db)
    yield engine
    await engine.dispose()


async def counts_by(engine: AsyncEngine, table: str, column: str) -> list[tuple[str, int]]:
    """(value, rows) of `table` grouped by `column`, in order: what the retention tests compare."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text(f"SELECT {column}, count(*) FROM {table} GROUP BY 1 ORDER BY 1"))
        return [(r[0], r[1]) for r in rows]


S = TypeVar("S", bound=ServiceSettings)
# Explicit keys (tests never rely on a default): fixed, so the in-process apps and the service processes
# of tests/gateway/platform.py open each other's data. Base64 of 32 bytes each.
TEST_PII_KEY = "eWlnb25ndGktdGVzdC1waWkta2V5LTMyLWJ5dGVzISE="
TEST_KEY_SECRET = "eWlnb25ndGktdGVzdC1nYXRld2F5LWtleS0zMmJ5dGU="


def service_settings(cls: type[S], database_url: str, **overrides: object) -> S:
    """A service's settings for in-process tests: the test database, quiet logs, explicit keys and the test
    broker (a service that has no such setting ignores it). An app built from them runs no relay and no
    consumers (the web role); a test that needs them starts them (`create_worker`, or a consumer of its own)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "pii_key": TEST_PII_KEY,
        "key_secret": TEST_KEY_SECRET,
        "kafka_bootstrap_servers": KAFKA,
        "log_json": False,
        "log_level": "WARNING",
        **overrides,
    }
    return cls(**values)  # type: ignore[arg-type]


def registry_settings(**overrides: object) -> RegistrySettings:
    return service_settings(RegistrySettings, REGISTRY_DB, **overrides)


@pytest_asyncio.fixture(scope="session")
async def registry_app(registry_db: str, signer: DevSigner):  # type: ignore[no-untyped-def]
    app = create_app(registry_settings(auth_jwks=json.dumps(signer.jwks())), clock=FixedClock(NOW))
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


def admin_headers(signer: DevSigner, subject: str = "commission-admin") -> dict[str, str]:
    return {"Authorization": "Bearer " + signer.mint("commission_admin", subject=subject)}


@pytest_asyncio.fixture
async def client(registry_app, clean_registry: None, signer: DevSigner) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    """The registry as the health commission sees it (tests of narrower roles pass their own token)."""
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(signer)
    ) as c:
        yield c


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA


REFERRAL_DB = f"{PG}/{isolated_name('referral_test')}"
REFERRAL_MIGRATIONS = Path(__file__).parents[1] / "services" / "referral" / "migrations"


@pytest_asyncio.fixture(scope="session")
async def referral_db() -> AsyncIterator[str]:
    yield await migrated_database(REFERRAL_DB, REFERRAL_MIGRATIONS, [*REFERRAL_TOPICS, *TOPICS.values()])


@pytest_asyncio.fixture(scope="session")
async def referral_engine(referral_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(referral_db)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def signer() -> DevSigner:
    return DevSigner.generate()


@pytest_asyncio.fixture(scope="session")
async def referral_app(referral_db: str, signer: DevSigner):  # type: ignore[no-untyped-def]
    settings = service_settings(ReferralSettings, referral_db, auth_jwks=json.dumps(signer.jwks()))
    app = create_referral_app(settings, clock=FixedClock(NOW))
    yield app
    await app.state.db.dispose()


@pytest_asyncio.fixture
async def clean_referrals(referral_engine: AsyncEngine, referral_app) -> None:  # type: ignore[no-untyped-def]
    referral_app.state.clock.at = NOW
    async with referral_engine.begin() as conn:
        await conn.execute(
            sa.text(
                "TRUNCATE referrals, referral_timeline, notifications, follow_up_visits, "
                "idempotency_keys, outbox, sessions, slots, bookings, waitlist, county_policies CASCADE"
            )
        )


@pytest_asyncio.fixture
async def referral_client(referral_app, clean_referrals: None) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    async with AsyncClient(transport=ASGITransport(app=referral_app), base_url="http://referral") as c:
        yield c


@pytest_asyncio.fixture(scope="session")
async def world(registry_app, referral_engine: AsyncEngine, signer: DevSigner):  # type: ignore[no-untyped-def]
    """A county built in the real registry and shipped to the referral service through Kafka."""
    from .referral.world import make_world

    return await make_world(registry_app, referral_engine, signer)


BILLING_DB = f"{PG}/{isolated_name('billing_test')}"
# Each billing test file posts claims in a year of its own, up to 2034, and a claim may not be dated
# after billing's today: its clock stands after all of them (it only stamps rows, nothing counts on it).
BILLING_NOW = datetime(2035, 1, 1, 2, 0, tzinfo=UTC)
BILLING_MIGRATIONS = Path(__file__).parents[1] / "services" / "billing" / "migrations"


@pytest_asyncio.fixture(scope="session")
async def billing_db() -> AsyncIterator[str]:
    yield await migrated_database(BILLING_DB, BILLING_MIGRATIONS, [*BILLING_TOPICS, *BILLING_CONSUMED])


@pytest_asyncio.fixture(scope="session")
async def billing_engine(billing_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(billing_db)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def billing_app(billing_db: str, signer: DevSigner):  # type: ignore[no-untyped-def]
    settings = service_settings(BillingSettings, billing_db, auth_jwks=json.dumps(signer.jwks()))
    app = create_billing_app(settings, clock=FixedClock(BILLING_NOW))
    yield app
    await app.state.db.dispose()


@pytest_asyncio.fixture
async def billing_client(billing_app) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    async with AsyncClient(transport=ASGITransport(app=billing_app), base_url="http://billing") as c:
        yield c


@pytest_asyncio.fixture(scope="session")
async def county(registry_app, referral_app, referral_engine, billing_engine, signer):  # type: ignore[no-untyped-def]
    """A county built in the real registry; its events reach billing (and referral) through Kafka, and
    an accepted upward referral reaches billing from the referral service."""
    from .billing.world import make_billing_world

    return await make_billing_world(registry_app, referral_app, referral_engine, billing_engine, signer)
