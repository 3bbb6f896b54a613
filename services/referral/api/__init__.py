"""HTTP routers of the referral service: thin wrappers over the use cases and queries. Request
dependencies are `deps.py`; who may do what is `services.referral.access`, called by the use cases and
queries."""

from fastapi import APIRouter

from . import referrals, settings, slots

ROUTERS: list[APIRouter] = [referrals.router, slots.router, settings.router]
