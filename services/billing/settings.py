"""Billing settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import EventServiceSettings


class BillingSettings(EventServiceSettings):
    service_name: str = "billing"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:25432/billing"
    consumer_group: str = "billing"


@lru_cache
def get_settings() -> BillingSettings:
    return BillingSettings()
