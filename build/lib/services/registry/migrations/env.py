"""Alembic environment for the registry database."""

from services.registry.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
