"""Referral settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import EventServiceSettings


class ReferralSettings(EventServiceSettings):
    service_name: str = "referral"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:25432/referral"
    consumer_group: str = "referral"
    sweep_seconds: float = 30.0  # how often deadlines, expiry, no-shows, missed follow-ups, releases run
    # slot policy of the county (family-doctor share is never below 0.40)
    slot_family_doctor_share: str = "0.40"
    slot_priority_share: str = "0.10"


@lru_cache
def get_settings() -> ReferralSettings:
    return ReferralSettings()
