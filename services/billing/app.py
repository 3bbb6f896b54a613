"""The billing service's app factory: API and the consumer of registry and referral events."""

from __future__ import annotations

from fastapi import FastAPI

from shared.app import create_service_app
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.db import Database

from . import api
from .models import inbox
from .readmodel import CONSUMED_TOPICS, apply_event
from .settings import BillingSettings, get_settings


def create_app(settings: BillingSettings | None = None, clock: Clock | None = None) -> FastAPI:
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

    return create_service_app(
        settings,
        [api.router],
        consumers=consumers,
        title="Yigongti billing / 医保打包结算",
        state={"clock": clock or Clock()},
    )
