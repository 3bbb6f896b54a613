"""Alembic environment for the gateway database."""

from services.gateway.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
