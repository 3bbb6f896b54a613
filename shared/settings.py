"""Settings from the environment (12-factor); each service extends ServiceSettings."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service reads from its environment."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/postgres"
    kafka_bootstrap_servers: str = "127.0.0.1:59092"
    # Run the outbox relay and event consumers inside the web process (one pod does everything).
    run_workers: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = 10
    outbox_poll_seconds: float = 0.2
    # The gateway's public keys (JWKS JSON), inline or from a file; services verify tokens with them.
    auth_jwks: str = ""
    auth_jwks_file: str = ""
    # The gateway's JWKS endpoint: fetched at start and again when a token names an unknown key (rotation).
    auth_jwks_url: str = ""

    def jwks_text(self) -> str:
        if self.auth_jwks_file:
            with open(self.auth_jwks_file, encoding="utf-8") as f:
                return f.read()
        return self.auth_jwks
