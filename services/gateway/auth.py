"""Issuing and revoking tokens: OAuth2 client credentials for HIS systems, password + refresh tokens
for people. Passwords and client secrets are argon2-hashed; refresh tokens are stored as SHA-256.

An argon2 hash or check costs ~100 ms of CPU: it runs in a small thread pool of its own (argon2-cffi
releases the GIL), never on the event loop, so logins do not stall every proxied call, and the database
connection is not held while it runs. The pool is bounded (HASH_THREADS) because each hash also takes
64 MiB and the event loop needs a core of its own; logins beyond it queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.principal import Role
from shared.problems import Problem

from . import models as m
from .keys import KeyRing

hasher = PasswordHasher()
# verifying against this keeps the time of "unknown user" equal to "wrong password"
DUMMY_HASH = hasher.hash("not-a-real-password")
HASH_THREADS = max(1, min(4, (os.cpu_count() or 2) - 1))
_hashing = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="argon2")


class InvalidGrant(Problem):
    """Wrong credentials (the login throttle counts these and nothing else)."""


def invalid_grant() -> InvalidGrant:
    return InvalidGrant(
        400, "invalid-grant", "用户名、密码或凭证无效", "Invalid credentials", error="invalid_grant"
    )


def _check(stored_hash: str | None, secret: str) -> bool:
    try:
        return hasher.verify(stored_hash or DUMMY_HASH, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """`secret` matches `stored_hash` (None: no such account, checked against a dummy all the same)."""
    return await asyncio.get_running_loop().run_in_executor(_hashing, _check, stored_hash, secret)


async def hash_secret(secret: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, hasher.hash, secret)


def _refresh_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_response(access: str, ttl: int, refresh: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": ttl}
    if refresh:
        body["refresh_token"] = refresh
    return body


T = TypeVar("T")


async def _read_detached(db: Database, model: type[T], key: str) -> T | None:
    """A row read and let go of (kept as read: the session's rollback would expire it), so that no
    connection is held while its secret is checked."""
    async with db.read() as s:
        row = await s.get(model, key)
        if row is not None:
            s.expunge(row)
        return row


async def client_credentials(
    db: Database, ring: KeyRing, client_id: str, secret: str, ttl: int
) -> dict[str, Any]:
    client = await _read_detached(db, m.ApiClient, client_id)
    matches = await verify_secret(client.secret_hash if client and client.active else None, secret)
    if not matches or client is None:
        raise invalid_grant()
    access, _, _ = ring.sign(
        {
            "sub": f"client:{client.client_id}",
            "role": Role.HIS_SYSTEM,
            "institution_id": str(client.institution_id),
            "community_id": str(client.community_id) if client.community_id else None,
        },
        ttl,
    )
    return token_response(access, ttl)


def _user_claims(user: m.User) -> dict[str, Any]:
    return {
        "sub": f"user:{user.username}",
        "role": user.role,
        **{
            k: str(getattr(user, k)) if getattr(user, k) else None
            for k in ("institution_id", "community_id", "practitioner_id", "resident_id")
        },
    }


async def _issue_for_user(
    s: AsyncSession, ring: KeyRing, user: m.User, ttl: int, refresh_ttl: int, now: datetime
) -> dict[str, Any]:
    access, _, _ = ring.sign(_user_claims(user), ttl)
    refresh = secrets.token_urlsafe(32)
    s.add(
        m.RefreshToken(
            token_hash=_refresh_hash(refresh),
            username=user.username,
            expires_at=now + timedelta(seconds=refresh_ttl),
        )
    )
    await s.flush()
    return token_response(access, ttl, refresh)


async def password_login(
    db: Database, ring: KeyRing, username: str, password: str, ttl: int, refresh_ttl: int, now: datetime
) -> dict[str, Any]:
    """The user is read, the password checked with no connection held, then the refresh token written."""
    user = await _read_detached(db, m.User, username)
    matches = await verify_secret(user.password_hash if user and user.active else None, password)
    if not matches or user is None:
        raise invalid_grant()
    async with db.uow() as uow:
        body = await _issue_for_user(uow.session, ring, user, ttl, refresh_ttl, now)
        await uow.commit()
    return body


async def refresh(
    s: AsyncSession, ring: KeyRing, token: str, ttl: int, refresh_ttl: int, now: datetime
) -> dict[str, Any]:
    """Refresh tokens rotate: the presented one is used up and a new pair is issued."""
    row = (
        await s.execute(
            sa.select(m.RefreshToken)
            .where(m.RefreshToken.token_hash == _refresh_hash(token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise invalid_grant()
    user = await s.get(m.User, row.username)
    if user is None or not user.active:
        raise invalid_grant()
    row.revoked_at = now
    return await _issue_for_user(s, ring, user, ttl, refresh_ttl, now)


async def logout(s: AsyncSession, jti: str, exp: int, refresh_token: str | None, now: datetime) -> None:
    """Revoke the access token (until it would have expired) and the refresh token, if given."""
    await s.execute(
        insert(m.RevokedToken)
        .values(jti=jti, expires_at=datetime.fromtimestamp(exp, UTC))
        .on_conflict_do_nothing()
    )
    if refresh_token:
        await s.execute(
            sa.update(m.RefreshToken)
            .where(m.RefreshToken.token_hash == _refresh_hash(refresh_token))
            .values(revoked_at=now)
        )
