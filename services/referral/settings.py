"""Referral settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    service_name: str = "referral"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/referral"
    consumer_group: str = "referral"
    sweep_seconds: float = 30.0  # how often deadlines, expiry, no-shows and missed follow-ups are checked


@lru_cache
def get_settings() -> ReferralSettings:
    return ReferralSettings()
