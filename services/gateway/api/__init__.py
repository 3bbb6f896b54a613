"""HTTP routers of the gateway: tokens and keys, administration, and the routed `/api/{service}/…` paths
(last). Request dependencies are `deps.py`; who may do what is `services.gateway.access`."""

from fastapi import APIRouter

from . import admin, proxy, tokens

ROUTERS: list[APIRouter] = [tokens.router, admin.router, proxy.router]
