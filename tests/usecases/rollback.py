"""A service database for one test, rolled back at its end: the machinery behind the fixtures of
tests/usecases/conftest.py.

Every session runs on ONE connection inside an outer transaction that is never committed. The sessions
join it with SQLAlchemy 2.0's `join_transaction_mode="create_savepoint"`: a unit of work's `begin()` is a
SAVEPOINT, its `commit()` a RELEASE SAVEPOINT and its rollback a ROLLBACK TO SAVEPOINT. So a use case runs
exactly as in the service — `shared.db.UnitOfWork` unchanged, its events written to the outbox by
`commit()`, the `EventsNotWritten` guard in force (the root transaction of such a session is not a
"nested" one, so the guard checks it as it checks a real commit) — and the outer rollback then takes
everything back. Nothing reaches Kafka: the events stay in the outbox, readable in the same transaction.

What a real commit would check and a savepoint release does not: deferred constraints (billing's
`ledger_journal_balanced` trigger, DEFERRABLE INITIALLY DEFERRED). `CommitChecked` sessions check them at
every commit (SET CONSTRAINTS ALL IMMEDIATE runs the pending checks at once, then the initially deferred
ones are deferred again), so an unbalanced journal fails the use case's commit here as it would there.

Not for code that opens connections of its own (`db.engine`: retention, the relay, readiness): a
`TxDatabase` has no engine, so such code fails loudly instead of committing outside the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from shared.db import Database, UnitOfWork
from shared.events import EventEnvelope

T = TypeVar("T")
M = TypeVar("M")
DEFERRED = "tests.initially_deferred"  # Session.info key: the constraints to defer again after a check

INITIALLY_DEFERRED_SQL = sa.text(
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname) FROM pg_constraint c"
    " JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.condeferred ORDER BY 1"
)


class CommitChecked(Session):
    """A session whose commit checks the deferred constraints, as a real COMMIT would."""


@sa.event.listens_for(CommitChecked, "before_commit")
def _check_deferred_constraints(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a begin_nested() inside the use case: its release is no commit either way
    session.flush()  # before_commit runs before the commit's own flush: check what it would write
    session.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))  # runs the pending checks now
    deferred: Sequence[str] = session.info.get(DEFERRED, ())
    if deferred:
        session.execute(sa.text(f"SET CONSTRAINTS {', '.join(deferred)} DEFERRED"))


class _ArrangedFirst(UnitOfWork):
    """The service's unit of work, opened once the test's arranging session has committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], arranging: AsyncSession) -> None:
        super().__init__(sessions)
        self._arranging = arranging

    async def __aenter__(self) -> UnitOfWork:
        if self._arranging.in_transaction():
            await self._arranging.commit()
        return await super().__aenter__()


@dataclass(frozen=True)
class Written:
    """An outbox row: where the relay would publish it, and the event."""

    topic: str
    key: str
    event: EventEnvelope


class TxDatabase(Database):
    """A `shared.db.Database` whose units of work run on the test's connection, inside its transaction.

    `uow()` gives the service's own `UnitOfWork` (and `read()` with it); `session` is a session of the
    test's for arranging rows (the factories of tests/factories.py) and reading them back; `run()` runs a
    use case the way the write path does (`shared.writes.run_write` without HTTP). What was arranged is
    committed (its savepoint released) as a unit of work opens, so the unit of work's savepoint is never
    inside the arranging session's and a use case that fails takes back only its own work. Arrange before
    or after a unit of work, not inside one (its release would take the arranging savepoint with it)."""

    def __init__(self, connection: AsyncConnection, initially_deferred: Sequence[str] = ()) -> None:
        # Deliberately not Database.__init__: no engine and no pool, every session is on `connection`.
        self.connection = connection
        options: dict[str, Any] = {
            "expire_on_commit": False,
            "join_transaction_mode": "create_savepoint",
            "sync_session_class": CommitChecked,
            "info": {DEFERRED: tuple(initially_deferred)},
        }
        self.sessions = async_sessionmaker(connection, autobegin=False, **options)
        self.session = AsyncSession(connection, **options)

    def uow(self) -> UnitOfWork:
        return _ArrangedFirst(self.sessions, self.session)

    async def dispose(self) -> None:
        """Nothing to dispose of: the connection belongs to the fixture."""

    async def run(self, use_case: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`use_case(session)` in a unit of work that commits (a savepoint released) if it returns; if it
        raises, the unit of work rolls back and the error propagates, as in the service."""
        async with self.uow() as uow:
            result = await use_case(uow.session)
            await uow.commit()
        return result

    async def get(self, model: type[M], ident: Any) -> M | None:
        """The row as the database has it now (not as the arranging session last saw it)."""
        return await self.session.get(model, ident, populate_existing=True)

    async def count(self, table: str, where: str = "", **params: Any) -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(await self.connection.scalar(sa.text(sql), params) or 0)

    async def outbox(self, *, after_seq: int = 0) -> list[Written]:
        """The events written so far in this test (the outbox is empty when a test starts), in seq order."""
        rows = await self.connection.execute(
            sa.text("SELECT topic, key, payload FROM outbox WHERE seq > :after ORDER BY seq"),
            {"after": after_seq},
        )
        return [Written(r.topic, r.key, EventEnvelope.model_validate(r.payload)) for r in rows]

    async def outbox_seq(self) -> int:
        """The last outbox seq so far: `outbox(after_seq=...)` then lists only what came after it."""
        return int(await self.connection.scalar(sa.text("SELECT coalesce(max(seq), 0) FROM outbox")) or 0)


@asynccontextmanager
async def rolled_back(engine: AsyncEngine) -> AsyncIterator[TxDatabase]:
    """A `TxDatabase` on one connection of `engine` in a transaction rolled back on exit, whatever happened."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            deferred = list((await conn.scalars(INITIALLY_DEFERRED_SQL)).all())
            db = TxDatabase(conn, deferred)
            try:
                yield db
            finally:
                await db.session.close()
        finally:
            await outer.rollback()


async def count_rows(conn: AsyncConnection) -> dict[str, int]:
    """Rows per table of the database (alembic's own table aside), as `conn` sees them."""
    names = (
        await conn.scalars(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY 1"
            )
        )
    ).all()
    return {n: int(await conn.scalar(sa.text(f'SELECT count(*) FROM "{n}"')) or 0) for n in names}


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    """`count_rows` on a connection of its own: what is committed."""
    async with engine.connect() as conn:
        return await count_rows(conn)
