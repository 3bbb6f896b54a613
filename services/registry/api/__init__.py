"""HTTP routers of the registry: thin wrappers over the use cases and queries. Request dependencies are
`deps.py`; who may do what is `services.registry.access`."""

from fastapi import APIRouter

from . import catalogues, orgs, people, settings, workforce

ROUTERS: list[APIRouter] = [orgs.router, workforce.router, people.router, catalogues.router, settings.router]
