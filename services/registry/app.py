"""The registry's two roles: the web app (API) and the worker (the outbox relay; it consumes nothing)."""

from __future__ import annotations

from fastapi import FastAPI

from shared.app import create_service_app
from shared.clock import Clock
from shared.worker import Worker

from .api import ROUTERS
from .settings import RegistrySettings, get_settings


def create_app(settings: RegistrySettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(
        settings,
        ROUTERS,
        title="Yigongti registry / 医共体基础数据",
        state={"vault": settings.vault(), "clock": clock or Clock()},
    )
    return app


def create_worker(settings: RegistrySettings | None = None) -> Worker:
    settings = settings or get_settings()
    return Worker(settings)
