"""The referral service's app factory: API, the registry read-model consumer, the deadline sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge

from shared.app import create_service_app
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.problems import Problem, problem_response

from . import api, api_slots
from .domain.errors import RuleViolation
from .domain.rules import Policy
from .domain.slots import SlotPolicy
from .models import inbox
from .readmodel import REGISTRY_TOPICS, apply_registry_event
from .settings import ReferralSettings, get_settings
from .usecases.sweeps import SWEEP_BATCH, SweepResult, sweep

log = structlog.get_logger()


SWEEP_RUNS = Counter("referral_sweep_runs_total", "Deadline sweeps that completed")
SWEEP_FAILURES = Counter("referral_sweep_failures_total", "Deadline sweeps that failed (they run again)")
SWEEP_LAST_SUCCESS = Gauge("referral_sweep_last_success_timestamp", "Unix time of the last completed sweep")


async def sweep_once(app: FastAPI) -> SweepResult:
    """One bounded sweep in its own transaction."""
    db: Database = app.state.db
    async with db.uow() as uow:
        result = await sweep(uow.session, app.state.clock.now(), app.state.policy, app.state.slot_policy)
        await uow.commit()
    if any(vars(result).values()):
        log.info("referral_sweep", **vars(result))
    return result


async def run_sweeps(app: FastAPI, every: float) -> None:
    """Periodic deadlines sweep; SKIP LOCKED makes several replicas safe. A failure is logged and counted
    (a silent failure would stop escalation unnoticed) and the sweep runs again at the next tick."""
    while True:
        await asyncio.sleep(every)
        try:
            while (await sweep_once(app)).has_more(SWEEP_BATCH):
                pass  # a backlog (after downtime) is worked off in bounded transactions
            SWEEP_RUNS.inc()
            SWEEP_LAST_SUCCESS.set_to_current_time()
        except Exception:
            SWEEP_FAILURES.inc()
            log.exception("referral_sweep_failed")


def create_app(
    settings: ReferralSettings | None = None,
    clock: Clock | None = None,
    policy: Policy | None = None,
    slot_policy: SlotPolicy | None = None,
) -> FastAPI:
    settings = settings or get_settings()

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

    def workers(app: FastAPI) -> Sequence[Coroutine[Any, Any, None]]:
        return [run_sweeps(app, settings.sweep_seconds)]

    app = create_service_app(
        settings,
        [api.router, api_slots.router],
        consumers=consumers,
        workers=workers,
        title="Yigongti referral / 双向转诊",
        state={
            "clock": clock or Clock(),
            "policy": policy or Policy(),
            "slot_policy": slot_policy
            or SlotPolicy(
                family_doctor_share=Decimal(settings.slot_family_doctor_share),
                priority_share=Decimal(settings.slot_priority_share),
            ),
        },
    )

    async def on_rule(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RuleViolation)
        return problem_response(Problem(exc.status, exc.slug, exc.zh, exc.en), request)

    app.add_exception_handler(RuleViolation, on_rule)
    return app
