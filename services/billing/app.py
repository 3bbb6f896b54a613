"""The billing service's two roles: the web app (API) and the worker (the consumer of registry and
referral events, the outbox relay)."""

from __future__ import annotations

from fastapi import FastAPI

from shared.app import create_service_app
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.worker import Worker

from .api import ROUTERS
from .models import inbox
from .readmodel import CONSUMED_TOPICS, apply_event
from .settings import BillingSettings, get_settings


def create_app(settings: BillingSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings,
        ROUTERS,
        title="Yigongti billing / 医保打包结算",
        state={"clock": clock or Clock()},
    )


def create_worker(settings: BillingSettings | None = None) -> Worker:
    settings = settings or get_settings()

    def consumers(db: Database) -> list[IdempotentConsumer]:
        return [
            IdempotentConsumer(
                db,
                inbox,
                settings.kafka_bootstrap_servers,
                settings.consumer_group,
                CONSUMED_TOPICS,
                apply_event,
            )
        ]

    return Worker(settings, consumers)
