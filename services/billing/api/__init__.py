"""HTTP routers of the billing service: thin wrappers over the use cases and queries. Request
dependencies are `deps.py`; who may do what is `services.billing.access`, called by the use cases and
queries."""

from fastapi import APIRouter

from . import claims, disputes, out_of_county, reports, years

ROUTERS: list[APIRouter] = [
    years.router,
    reports.router,
    claims.router,
    disputes.router,
    out_of_county.router,
]
