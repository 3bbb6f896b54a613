"""Registry settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: str = "registry"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/registry"
    # 32 random bytes, base64. The default exists only for local runs; deployments set PII_KEY from a Secret.
    pii_key: str = "eWlnb25ndGktbG9jYWwtZGV2LWtleS0zMmJ5dGVzISE="


@lru_cache
def get_settings() -> RegistrySettings:
    return RegistrySettings()
