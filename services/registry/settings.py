"""Registry settings (environment variables, see README)."""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from pydantic import SecretStr

from shared.pii import PiiVault, split_keys
from shared.settings import EventServiceSettings, SecretKey

PII = SecretKey(
    "pii_key",
    "pii_old_keys",
    "the key that seals residents' national IDs and phones (32 random bytes, base64)",
    "eWlnb25ndGktbG9jYWwtZGV2LWtleS0zMmJ5dGVzISE=",  # development only: public, in git
)


class RegistrySettings(EventServiceSettings):
    required_keys: ClassVar[tuple[SecretKey, ...]] = (PII,)

    service_name: str = "registry"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:25432/registry"
    # Required (no default, see shared/settings.py). Deployments set it from a Secret.
    pii_key: SecretStr
    # Older keys, comma-separated: still opened and looked up until `reseal` has moved every value.
    pii_old_keys: SecretStr = SecretStr("")

    def vault(self) -> PiiVault:
        return PiiVault(self.pii_key, split_keys(self.pii_old_keys))


@lru_cache
def get_settings() -> RegistrySettings:
    return RegistrySettings()
