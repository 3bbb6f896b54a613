from __future__ import annotations

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.devtokens import DevSigner

from .world import World, make_world


@pytest_asyncio.fixture(scope="session")
async def world(registry_app, referral_engine: AsyncEngine, signer: DevSigner) -> World:  # type: ignore[no-untyped-def]
    return await make_world(registry_app, referral_engine, signer)
