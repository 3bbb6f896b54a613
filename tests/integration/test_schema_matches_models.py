"""Each service's models describe exactly the schema its migrations build (an autogenerate diff of the
test databases, which `alembic upgrade head` created, is empty) — a model change without a migration
fails here, not in production."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from services.billing.models import Base as BillingBase
from services.referral.models import Base as ReferralBase
from services.registry.models import Base as RegistryBase


def not_a_test_table(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Other tests create their own scratch tables (`test_*`) in these databases."""
    return not (kind == "table" and reflected and compare_to is None and (name or "").startswith("test_"))


async def schema_diff(url: str, metadata: sa.MetaData) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_object": not_a_test_table}), metadata
                )
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", ["registry", "referral", "billing"])
async def test_models_match_the_migrated_schema(
    service: str, registry_db: str, referral_db: str, billing_db: str
) -> None:
    url, metadata = {
        "registry": (registry_db, RegistryBase.metadata),
        "referral": (referral_db, ReferralBase.metadata),
        "billing": (billing_db, BillingBase.metadata),
    }[service]
    assert await schema_diff(url, metadata) == []
