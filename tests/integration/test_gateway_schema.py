"""The gateway publishes and consumes no events: after `migrate` its database has no outbox, no inbox and
no relay trigger, its models match what the migrations built, and the down migration brings the two
tables back as they were (and up again drops them)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.gateway.models import Base
from shared.migrations import downgrade, upgrade

from ..conftest import PG, TEST_KEY_SECRET, isolated_name, recreate_database
from .test_schema_matches_models import schema_diff

ROOT = Path(__file__).parents[2]
MIGRATIONS = ROOT / "services/gateway/migrations"
EVENT_OBJECTS = sa.text(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('outbox', 'inbox')"
    " UNION ALL SELECT proname FROM pg_proc WHERE proname = 'outbox_notify' ORDER BY 1"
)


async def event_objects(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(EVENT_OBJECTS)).scalars())
    finally:
        await engine.dispose()


async def test_the_gateway_database_has_no_outbox_or_inbox() -> None:
    name = isolated_name("gateway_schema_test")
    await recreate_database(name)
    url = f"{PG}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "KEY_SECRET": TEST_KEY_SECRET}
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.gateway", "migrate"], env=env, cwd=ROOT, check=True
    )
    assert await event_objects(url) == []
    assert await schema_diff(url, Base.metadata) == []

    await asyncio.to_thread(downgrade, MIGRATIONS, url, "0002")
    assert await event_objects(url) == ["inbox", "outbox", "outbox_notify"]
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    assert await event_objects(url) == []
