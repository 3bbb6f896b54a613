"""Telling a fault (the database or the broker is briefly away, a lock is contended) from an error in the
data (a record that cannot be decoded, breaks validation or a domain rule).

A fault is retried, from where we were, until it passes; an error in the data will fail the same way every
time and is set aside. Getting this wrong either way is costly: dead-lettering a fault silently drops an
event (a read model then misses a resident for good); retrying bad data forever blocks a partition.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes of a database that is unreachable, overloaded, shutting down or timing out (08, 53, 57),
# and of contention that passes on retry (40: serialization failure, deadlock; 55P03: lock not available)
TRANSIENT_CLASSES = ("08", "40", "53", "57")


def sqlstate(exc: BaseException) -> str:
    """The PostgreSQL error code (SQLSTATE) behind a SQLAlchemy or asyncpg error, or "" when there is none."""
    orig = getattr(exc, "orig", exc)
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def refused_client_side(exc: BaseException) -> bool:
    """asyncpg refused a parameter before sending it (a number out of range, a wrong type): bad data,
    though SQLAlchemy may present it as an InterfaceError without a SQLSTATE."""
    return isinstance(getattr(getattr(exc, "orig", None), "__cause__", None), ValueError)


def is_transient(exc: BaseException) -> bool:
    """True when the same operation may well succeed if simply tried again later."""
    if refused_client_side(exc):
        return False
    if isinstance(exc, ConnectionError | TimeoutError | PoolTimeout | KafkaError):
        return True
    code = sqlstate(exc)
    if code[:2] in TRANSIENT_CLASSES or code == "55P03":
        return True
    if isinstance(exc, DBAPIError) and not code:
        return isinstance(exc, InterfaceError) or exc.connection_invalidated
    if isinstance(exc, OSError) and not code:  # refused, reset, unreachable
        return True
    return exc.__cause__ is not None and is_transient(exc.__cause__)  # e.g. `raise X from OSError`
