"""What every gateway router needs: the database, its settings, the PII vault, the clock, paging, the
signing key ring, the revoked tokens and the caller (a bearer token verified here, not by `shared.auth`:
the gateway issues the tokens). The same names (`clock`, `Clk`, `Paging`, `Caller`) as in every service's
`api/deps.py`."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from shared.auth import unauthorized
from shared.deps import Clk, Paging, clock, database, request_id, vault
from shared.principal import Principal

from .. import models as m
from ..keys import KeyRing
from ..settings import GatewaySettings

__all__ = [
    "Caller",
    "Clk",
    "Paging",
    "caller",
    "clock",
    "database",
    "gateway_settings",
    "key_ring",
    "request_id",
    "revoked_tokens",
    "vault",
]


def gateway_settings(request: Request) -> GatewaySettings:
    s: GatewaySettings = request.app.state.settings
    return s


async def key_ring(request: Request) -> KeyRing:
    """Loaded from the database and re-read every KEY_RING_REFRESH_SECONDS, so every replica sees a rotation."""
    app = request.app
    db, settings, clk = database(request), gateway_settings(request), clock(request)
    cached: tuple[float, KeyRing] | None = getattr(app.state, "ring", None)
    if cached and time.monotonic() - cached[0] < settings.key_ring_refresh_seconds:
        return cached[1]
    async with db.uow() as uow:
        ring = await KeyRing.load(
            uow.session, app.state.vault, clk.now(), timedelta(seconds=settings.key_grace_seconds)
        )
        await uow.commit()
    app.state.ring = (time.monotonic(), ring)
    return ring


async def caller(request: Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("missing bearer token", "缺少访问令牌")
    principal = (await key_ring(request)).verifier.verify(token.strip())
    if principal.token_id and principal.token_id in await revoked_tokens(request):
        raise unauthorized("token revoked", "令牌已注销")
    return principal


async def revoked_tokens(request: Request) -> set[str]:
    """Revoked, unexpired token ids, re-read every REVOCATION_REFRESH_SECONDS (a logout on this replica
    counts at once; on the others within that time) instead of a database query per request."""
    app = request.app
    db, settings, clk = database(request), gateway_settings(request), clock(request)
    cached: tuple[float, set[str]] | None = getattr(app.state, "revoked", None)
    if cached and time.monotonic() - cached[0] < settings.revocation_refresh_seconds:
        return cached[1]
    async with db.read() as s:
        ids = set(
            (
                await s.execute(sa.select(m.RevokedToken.jti).where(m.RevokedToken.expires_at > clk.now()))
            ).scalars()
        )
    app.state.revoked = (time.monotonic(), ids)
    return ids


Caller = Annotated[Principal, Depends(caller)]
