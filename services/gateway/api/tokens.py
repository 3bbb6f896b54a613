"""Tokens: the OAuth2 token endpoint, logout, and the public keys (JWKS) tokens are verified with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from shared.problems import Problem
from shared.text import RequestModel

from .. import auth
from .deps import Caller, clock, database, gateway_settings, key_ring, revoked_tokens

router = APIRouter(tags=["gateway"])


@router.post("/oauth/token", summary="OAuth2 token endpoint: client_credentials, password, refresh_token")
async def token(
    request: Request,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    username: Annotated[str | None, Form(max_length=100)] = None,
    password: Annotated[str | None, Form(max_length=200)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
) -> JSONResponse:
    """Credentials are checked under the login throttle (services/gateway/throttle.py): per account and
    per client address, failures lock for a while (429 with Retry-After)."""
    db, settings = database(request), gateway_settings(request)
    ring = await key_ring(request)
    ttl, refresh_ttl, now = settings.access_ttl_seconds, settings.refresh_ttl_seconds, clock(request).now()
    throttle, audit_writer = request.app.state.throttle, request.app.state.audit
    address = request.client.host if request.client else "unknown"
    if grant_type == "client_credentials" and client_id and client_secret:
        async with throttle.attempt(f"client:{client_id}", address, audit_writer, now):
            body = await auth.client_credentials(db, ring, client_id, client_secret, ttl)
    elif grant_type == "password" and username and password:
        async with throttle.attempt(f"user:{username}", address, audit_writer, now):
            body = await auth.password_login(db, ring, username, password, ttl, refresh_ttl, now)
    elif grant_type == "refresh_token" and refresh_token:
        async with db.uow() as uow:
            body = await auth.refresh(uow.session, ring, refresh_token, ttl, refresh_ttl, now)
            await uow.commit()
    else:
        raise Problem(
            400,
            "unsupported-grant",
            "不支持的授权方式或缺少参数",
            "Unsupported grant_type or missing parameters",
            error="unsupported_grant_type",
        )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


class LogoutIn(RequestModel):
    refresh_token: str | None = Field(default=None, max_length=200)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, principal: Caller, body: LogoutIn | None = None) -> Response:
    db = database(request)
    async with db.uow() as uow:
        await auth.logout(
            uow.session,
            principal.token_id or "",
            principal.expires_at or 0,
            body.refresh_token if body else None,
            clock(request).now(),
        )
        await uow.commit()
    if principal.token_id:
        (await revoked_tokens(request)).add(principal.token_id)
    return Response(status_code=204)


@router.get("/.well-known/jwks.json", summary="The public keys services verify tokens with")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse((await key_ring(request)).jwks, headers={"Cache-Control": "max-age=60"})
