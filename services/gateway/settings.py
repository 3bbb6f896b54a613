"""Gateway settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from pydantic import SecretStr

from shared.settings import SecretKey, ServiceSettings


class GatewaySettings(ServiceSettings):
    """No Kafka, outbox or inbox settings: the gateway publishes and consumes no events."""

    service_name: str = "gateway"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:25432/gateway"
    registry_url: str = "http://127.0.0.1:8001"
    referral_url: str = "http://127.0.0.1:8002"
    billing_url: str = "http://127.0.0.1:8003"
    # 32 random bytes, base64: seals the signing keys at rest. Required, no default (shared/settings.py);
    # deployments set it from a Secret. Older keys, comma-separated, still open until `reseal` has run.
    key_secret: SecretStr
    key_old_secrets: SecretStr = SecretStr("")
    required_keys: ClassVar[tuple[SecretKey, ...]] = (
        SecretKey(
            "key_secret",
            "key_old_secrets",
            "the key that seals the gateway's token-signing keys (32 random bytes, base64)",
            "eWlnb25ndGktZ2F0ZXdheS1kZXYta2V5LTMyYnl0ZSE=",  # development only: public, in git
        ),
    )
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 14 * 24 * 3600
    key_grace_seconds: int = 3600  # a retired key stays in the JWKS this long, so live tokens still verify
    key_ring_refresh_seconds: float = 30.0  # how often each replica re-reads the keys (sees a rotation)
    upstream_timeout_seconds: float = 10.0
    max_body_bytes: int = 1_048_576
    revocation_refresh_seconds: float = 2.0
    redis_url: str = "redis://127.0.0.1:26379/0"
    rate_limit_burst: int = 120  # token bucket per client or user: this many at once...
    rate_limit_per_second: float = 20.0  # ...refilled at this rate
    # one Redis pool per process (rate limits and login throttle): a request waiting longer than
    # REDIS_WAIT_SECONDS for a connection is a 503; past REDIS_TIMEOUT_SECONDS Redis is unreachable (fail open)
    redis_max_connections: int = 32
    redis_wait_seconds: float = 1.0
    redis_timeout_seconds: float = 0.5
    # failed logins: the Nth failure in a row for an account (per username or client_id) locks it for
    # LOGIN_LOCK_SECONDS, doubling per further failure up to LOGIN_LOCK_MAX_SECONDS; likewise per client
    # address with a higher count (a hospital sits behind one NAT). Forgotten a window after the last one.
    login_account_failures: int = 5
    login_address_failures: int = 20
    login_lock_seconds: float = 1.0
    login_lock_max_seconds: float = 900.0
    login_window_seconds: float = 900.0


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
