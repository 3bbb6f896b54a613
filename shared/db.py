"""Async engine and the unit of work: the one place a service commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(
    url: str, pool_size: int = 10, statement_timeout_ms: int = 30_000, lock_timeout_ms: int = 5_000
) -> AsyncEngine:
    """Every connection carries its statement and lock timeouts, and the client gives up on a silent
    server (a half-dead socket) a little after the statement timeout, so nothing waits for ever."""
    return create_async_engine(
        url,
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


class UnitOfWork:
    """A transaction that rolls back unless `commit()` is called (cosmicpython style).

    State changes and their outbox events are written through the same session, so they commit
    together or not at all.
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
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()


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


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a read-only session on the app's database (rolled back at the end)."""
    db: Database = request.app.state.db
    async with db.read() as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(read_session)]
