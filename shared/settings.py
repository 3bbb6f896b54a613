"""Settings from the environment (12-factor); each service extends ServiceSettings, and a service that
publishes or consumes events extends EventServiceSettings (Kafka, outbox and inbox): the gateway has
neither, so it cannot even be configured to reach a broker.

Secrets (keys) have no usable default: outside `ENVIRONMENT=development` a service whose required
secret is missing or malformed refuses to start, naming the variable and how to generate a value.
A fixed development key would silently protect a real county's data with a key published in git.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.pii import GENERATE_HINT, decode_key, split_keys

DEVELOPMENT = "development"
log = logging.getLogger("yigongti.settings")


class MissingSecretError(RuntimeError):
    """A required secret is absent or malformed; the message says which and how to make one."""


@dataclass(frozen=True)
class SecretKey:
    """A required key setting (32 random bytes, base64) and the older keys still accepted for reading."""

    field: str  # e.g. "pii_key" (environment variable PII_KEY)
    old_field: str  # e.g. "pii_old_keys" (comma-separated, may be empty)
    purpose: str  # one line for the error message
    dev_value: str  # used only with ENVIRONMENT=development when the variable is missing


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value.strip() if isinstance(value, str) else ""


def check_secrets(specs: tuple[SecretKey, ...], data: dict[str, Any]) -> dict[str, Any]:
    """Fill or refuse each required key in the raw settings values (see module docstring)."""
    development = _text(data.get("environment", "production")).lower() == DEVELOPMENT
    for spec in specs:
        name, old_name = spec.field.upper(), spec.old_field.upper()
        if not _text(data.get(spec.field)):
            if not development:
                raise MissingSecretError(
                    f"{name} is not set: {spec.purpose}. Generate one with {GENERATE_HINT} and set {name} "
                    f"from your secret store (ENVIRONMENT=development falls back to a fixed development key)."
                )
            log.warning(
                "%s is not set: using the fixed DEVELOPMENT key, which is public. Never do this with real "
                "data; scripts/up.sh generates real keys into .local/secrets.env.",
                name,
            )
            data = {**data, spec.field: spec.dev_value}
        try:
            decode_key(_text(data[spec.field]))
        except ValueError as exc:
            raise MissingSecretError(f"{name} is malformed: {exc}") from None
        for old in split_keys(_text(data.get(spec.old_field))):
            try:
                decode_key(old)
            except ValueError as exc:
                raise MissingSecretError(f"{old_name} has a malformed key: {exc}") from None
    return data


class ServiceSettings(BaseSettings):
    """What every service reads from its environment."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")
    required_keys: ClassVar[tuple[SecretKey, ...]] = ()

    # "development" lets a missing key fall back to a fixed, public development key (with a warning).
    environment: str = "production"
    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:25432/postgres"
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = 10
    # No statement and no lock wait runs for ever: a statement past its time is a 503 with Retry-After, a
    # lock not granted in time a 409 with Retry-After (shared/problems.py), never a request that hangs.
    db_statement_timeout_ms: int = 30_000
    db_lock_timeout_ms: int = 5_000
    # The gateway's public keys (JWKS JSON), inline or from a file; services verify tokens with them.
    auth_jwks: str = ""
    auth_jwks_file: str = ""
    # The gateway's JWKS endpoint: fetched at start and again when a token names an unknown key (rotation).
    auth_jwks_url: str = ""
    # How long a stored Idempotency-Key reply answers retries; older keys count as absent and are purged.
    idempotency_ttl_seconds: int = 86_400
    # Proxies whose X-Forwarded-For uvicorn believes (the ingress in front of the gateway; the gateway in
    # front of a service): the login throttle counts failures per real client address, not per proxy.
    forwarded_allow_ips: str = "127.0.0.1"

    @model_validator(mode="before")
    @classmethod
    def _keys_present(cls, data: Any) -> Any:
        return check_secrets(cls.required_keys, data) if isinstance(data, dict) else data

    def jwks_text(self) -> str:
        if self.auth_jwks_file:
            with open(self.auth_jwks_file, encoding="utf-8") as f:
                return f.read()
        return self.auth_jwks


class EventServiceSettings(ServiceSettings):
    """What a service with an outbox (and perhaps consumers) reads besides: its worker role
    (`python -m services.<name> worker`) relays the outbox, consumes and purges with these."""

    kafka_bootstrap_servers: str = "127.0.0.1:29092"
    outbox_poll_seconds: float = 0.2
    # Retention (shared/retention.py; 0 keeps for ever). Published outbox rows are in Kafka already.
    outbox_retention_seconds: int = 7 * 86_400
    # An inbox row is what makes a redelivered event change nothing: keep it well beyond the Kafka retention
    # of the consumed topics plus any consumer downtime or replay window, or a late duplicate applies again.
    inbox_retention_seconds: int = 30 * 86_400
