"""Gateway test fixtures: the running platform on the test county (a module's own, started once per
module), and an in-process gateway in front of upstreams that hang or are down."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from httpx import ASGITransport, AsyncClient

from services.gateway import models as m
from services.gateway.app import create_app
from services.gateway.auth import hasher
from services.gateway.settings import GatewaySettings
from shared.migrations import upgrade

from ..conftest import PG, REDIS, isolated_name, recreate_database
from ..referral.world import World
from .platform import running_platform

MIGRATIONS = Path(__file__).parents[2] / "services/gateway/migrations"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AsyncClient, int]]:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    hang_port = server.sockets[0].getsockname()[1]
    await recreate_database(isolated_name("gateway_failures_test"))
    url = f"{PG}/{isolated_name('gateway_failures_test')}"
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    settings = GatewaySettings(
        database_url=url,
        log_json=False,
        registry_url=f"http://127.0.0.1:{hang_port}",
        referral_url=f"http://127.0.0.1:{closed_port()}",
        upstream_timeout_seconds=0.5,
        redis_url=REDIS,
        key_secret=base64.b64encode(os.urandom(32)).decode(),
        **getattr(request, "param", {}),
    )
    app = create_app(settings)
    async with app.state.db.uow() as uow:
        for name in ("admin", "other"):
            uow.session.add(
                m.User(username=name, password_hash=hasher.hash(f"{name}-password"), role="commission_admin")
            )
        await uow.commit()
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://gateway") as c:
        r = await c.post(
            "/oauth/token", data={"grant_type": "password", "username": "admin", "password": "admin-password"}
        )
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield c, hang_port
    await app.state.audit.close()
    await app.state.upstreams.close()
    await app.state.db.dispose()
    server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway_url(world: World, billing_db: str) -> AsyncIterator[str]:
    """The gateway and the three services as real processes on the county of `world`."""
    await recreate_database(isolated_name("gateway_test"))
    with running_platform() as url:
        yield url
