"""Async engine and the unit of work: the one place a service commits. No web code here (the request
dependency that opens a read session is `shared.deps.ReadSession`): workers and scripts use it too."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, Full

from shared.events import OutgoingEvent
from shared.tracing import stamped


class FairQueue(AsyncAdaptedQueue[Any]):
    """The pool's idle connections, handed to waiting checkouts in the order they began to wait.

    SQLAlchemy's own queue (an `asyncio.Queue`) lets a checkout that arrives just after a connection was
    returned take it ahead of the one woken for it, which then waits again at the back: under a steady load
    a few checkouts starve until the pool timeout (a 503 after 10 s), while the rest are fast. Here a
    returned connection goes straight to the longest waiter, so idle connections exist only when nobody
    waits and nobody overtakes."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._items: deque[Any] = deque()
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # the pool never returns more connections than it holds: never full

    def get_nowait(self) -> Any:
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self._items or not block:
            return self.get_nowait()
        try:
            return await_(self._wait(timeout))
        except TimeoutError:
            raise Empty() from None

    async def _wait(self, seconds: float | None) -> Any:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed over just as this one gave up: pass it on
            else:
                waiter.cancel()
            raise


class FairPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool with a first-come, first-served wait for a connection (`FairQueue`)."""

    _queue_class = FairQueue


def make_engine(
    url: str, pool_size: int = 10, statement_timeout_ms: int = 30_000, lock_timeout_ms: int = 5_000
) -> AsyncEngine:
    """Every connection carries its statement and lock timeouts, and the client gives up on a silent
    server (a half-dead socket) a little after the statement timeout, so nothing waits for ever."""
    return create_async_engine(
        url,
        poolclass=FairPool,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={
            "timeout": 5,
            "command_timeout": statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(statement_timeout_ms),
                "lock_timeout": str(lock_timeout_ms),
                "idle_in_transaction_session_timeout": str(max(statement_timeout_ms * 2, 60_000)),
            },
        },
    )


PENDING_EVENTS = "yigongti.pending_events"  # Session.info key: events raised, not yet in the outbox


class UnitOfWork:
    """A transaction that rolls back unless `commit()` is called (cosmicpython style).

    Use cases raise events with `collect(session, event)` (or `uow.collect(event)`) as they go; `commit()`
    writes them to the outbox, in the order raised, in the same transaction right before it commits, so
    state and events commit together or not at all and no call site writes the outbox by hand. A rolled
    back unit of work drops its events with its changes. Committing a session with raised events any other
    way is refused (`EventsNotWritten`), so an event can never be lost by a commit that bypassed this.
    Raise events outside `begin_nested()` blocks: a savepoint rolled back does not take back its events.
    The outbox rows are written at commit, so each key's lock (`record_event`) is held only from then on.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.session.info.pop(PENDING_EVENTS, None)
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    def collect(self, *events: OutgoingEvent) -> None:
        collect(self.session, *events)

    @property
    def events(self) -> list[OutgoingEvent]:
        """The events raised so far and not yet written."""
        return list(self.session.info.get(PENDING_EVENTS, ()))

    async def commit(self) -> None:
        from shared.outbox import record_events  # shared.outbox imports this module

        raised = self.session.info.pop(PENDING_EVENTS, ())
        await record_events(self.session, _outbox(), [(e.topic, e.key, e.envelope) for e in raised])
        await self.session.commit()


def collect(session: AsyncSession, *events: OutgoingEvent) -> None:
    """Raise events in the session's transaction: its unit of work writes them to the outbox at commit.
    Each carries the trace context it is raised in: the request's, or the consumed event's
    (`shared.tracing.stamped`)."""
    session.info.setdefault(PENDING_EVENTS, []).extend(stamped(event) for event in events)


class EventsNotWritten(RuntimeError):
    """A session with raised events was committed outside `UnitOfWork.commit()`."""


@sa.event.listens_for(Session, "before_commit")
def _refuse_unwritten_events(session: Session) -> None:
    if session.in_nested_transaction():
        return  # releasing a savepoint commits nothing yet
    pending = session.info.get(PENDING_EVENTS)
    if pending:
        raise EventsNotWritten(
            f"{len(pending)} raised event(s) ({pending[0].envelope.type}, ...) would be lost:"
            " commit through UnitOfWork.commit(), which writes them to the outbox"
        )


@functools.cache
def _outbox() -> sa.Table:
    """The outbox as every service's migrations create it (the same name and columns in each database)."""
    from shared.tables import add_platform_tables

    return add_platform_tables(sa.MetaData())[0]


class Database:
    """Engine plus session factory for one service's database."""

    def __init__(
        self, url: str, pool_size: int = 10, statement_timeout_ms: int = 30_000, lock_timeout_ms: int = 5_000
    ) -> None:
        self.engine = make_engine(url, pool_size, statement_timeout_ms, lock_timeout_ms)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autobegin=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (rolled back at the end)."""
        async with self.uow() as uow:
            yield uow.session

    async def dispose(self) -> None:
        await self.engine.dispose()
