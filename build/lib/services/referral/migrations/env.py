"""Alembic environment for the referral database."""

from services.referral.models import Base
from shared.migrations import run_env

run_env(Base.metadata)
