"""The worker role of a service with events: the outbox relay, the event consumers, the service's own
periodic jobs (referral's deadline sweeps) and the retention purge, in a process of their own
(`python -m services.<name> worker`), so that web replicas scale with requests and only the workers talk
to Kafka. Tests start one in-process with `async with service.app.create_worker(settings) as worker:`.

Every job is safe with several worker replicas: the relay holds an advisory lock (one publishes, the
others stand by), consumers share their group's partitions, sweeps and the purge take rows SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any

from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.logging import configure_logging
from shared.outbox import OutboxRelay, watch_outbox
from shared.retention import purge_forever
from shared.settings import EventServiceSettings, ServiceSettings
from shared.tracing import configure_tracing

Job = Callable[[Database], Coroutine[Any, Any, None]]
ConsumerFactory = Callable[[Database], Sequence[IdempotentConsumer]]
# SIGTERM must end the process within 10 s whatever is down (Kubernetes waits 30 s, then SIGKILLs):
STOP_SECONDS = 3.0  # for the tasks to end after their cancellation...
FLUSH_SECONDS = 3.0  # ...then for one last flush of what committed while they were stopping


def service_database(settings: ServiceSettings) -> Database:
    """The service's database pool with its timeouts, for either role."""
    return Database(
        settings.database_url,
        settings.db_pool_size,
        settings.db_statement_timeout_ms,
        settings.db_lock_timeout_ms,
    )


class Worker:
    """Runs the background jobs of one service between `start()` and `stop()` (or `async with`)."""

    def __init__(
        self,
        settings: EventServiceSettings,
        consumers: ConsumerFactory | None = None,
        jobs: Mapping[str, Job] | None = None,
    ) -> None:
        """`consumers` makes the service's consumers on the worker's database; each of `jobs` (by name) is
        started with it and runs until cancelled."""
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        configure_tracing(settings.service_name, settings)
        self.settings = settings
        self.db = service_database(settings)  # the worker's own pool, closed by stop()
        self.relay = OutboxRelay(
            settings.database_url, settings.kafka_bootstrap_servers, poll_seconds=settings.outbox_poll_seconds
        )
        self.consumers = list(consumers(self.db)) if consumers else []
        self.jobs = dict(jobs or {})
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        s = self.settings
        purge = purge_forever(
            self.db,
            s.idempotency_ttl_seconds,
            outbox_seconds=s.outbox_retention_seconds,
            inbox_seconds=s.inbox_retention_seconds,
        )
        work: dict[str, Coroutine[Any, Any, None]] = {
            "outbox-metrics": watch_outbox(self.db),
            "outbox-relay": self.relay.run(),
            "retention": purge,
            **{c.group_id: c.run_forever() for c in self.consumers},
            **{name: job(self.db) for name, job in self.jobs.items()},
        }
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in work.items()]

    async def stop(self) -> None:
        """Cancel everything and flush the outbox once more, each step bounded (a broker or database that is
        away must not hold up SIGTERM); then close the database."""
        self.relay.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            done, _ = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in done:  # collect what they raised (already logged where it happened)
                _ = task.cancelled() or task.exception()
        self._tasks = []
        with contextlib.suppress(Exception):  # what is left goes with the next worker
            await asyncio.wait_for(self.relay.drain(), FLUSH_SECONDS)
        await self.db.dispose()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
