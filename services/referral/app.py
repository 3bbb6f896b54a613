"""The referral service's two roles: the web app (API) and the worker (the registry read-model consumer,
the outbox relay, the deadline sweeps)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import FastAPI

from shared.app import create_service_app
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.worker import Worker

from .api import ROUTERS
from .domain.rules import Policy
from .domain.slots import SlotPolicy
from .models import inbox
from .readmodel import REGISTRY_TOPICS, apply_registry_event
from .settings import ReferralSettings, get_settings
from .usecases.sweeps import run_sweeps


def county_slot_policy(settings: ReferralSettings) -> SlotPolicy:
    return SlotPolicy(
        family_doctor_share=Decimal(settings.slot_family_doctor_share),
        priority_share=Decimal(settings.slot_priority_share),
    )


def create_app(
    settings: ReferralSettings | None = None,
    clock: Clock | None = None,
    policy: Policy | None = None,
    slot_policy: SlotPolicy | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(
        settings,
        ROUTERS,
        title="Yigongti referral / 双向转诊",
        state={
            "clock": clock or Clock(),
            "policy": policy or Policy(),
            "slot_policy": slot_policy or county_slot_policy(settings),
        },
    )
    return app


def create_worker(
    settings: ReferralSettings | None = None,
    clock: Clock | None = None,
    policy: Policy | None = None,
    slot_policy: SlotPolicy | None = None,
) -> Worker:
    settings = settings or get_settings()
    clock, policy = clock or Clock(), policy or Policy()
    slots = slot_policy or county_slot_policy(settings)

    def consumers(db: Database) -> list[IdempotentConsumer]:
        return [
            IdempotentConsumer(
                db,
                inbox,
                settings.kafka_bootstrap_servers,
                settings.consumer_group,
                REGISTRY_TOPICS,
                apply_registry_event,
            )
        ]

    return Worker(
        settings,
        consumers,
        {"sweeps": lambda db: run_sweeps(db, clock, policy, slots, settings.sweep_seconds)},
    )
