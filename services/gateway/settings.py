"""Gateway settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/gateway"
    registry_url: str = "http://127.0.0.1:8001"
    referral_url: str = "http://127.0.0.1:8002"
    billing_url: str = "http://127.0.0.1:8003"
    # 32 random bytes, base64: seals the signing keys at rest. Deployments set it from a Secret.
    key_secret: str = "eWlnb25ndGktZ2F0ZXdheS1kZXYta2V5LTMyYnl0ZSE="
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 14 * 24 * 3600
    key_grace_seconds: int = 3600
    key_ring_refresh_seconds: float = 30.0  # how often each replica re-reads the keys (sees a rotation)  # a retired key stays in the JWKS this long, so live tokens still verify
    upstream_timeout_seconds: float = 10.0
    max_body_bytes: int = 1_048_576
    revocation_refresh_seconds: float = 2.0
    redis_url: str = "redis://127.0.0.1:56379/0"
    rate_limit_burst: int = 120  # token bucket per client or user: this many at once...
    rate_limit_per_second: float = 20.0  # ...refilled at this rate


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
