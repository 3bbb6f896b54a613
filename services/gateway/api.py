"""The gateway's own endpoints (tokens, JWKS, admin, audit) and the routed `/api/{service}/…` paths."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from shared.auth import unauthorized
from shared.clock import Clock
from shared.crud import paginate, where_equal
from shared.db import Database
from shared.deps import Paging
from shared.errors import DomainError, forbidden
from shared.pagination import Page
from shared.pii import PiiVault
from shared.principal import Principal, Role
from shared.problems import Problem, status_of
from shared.text import RequestModel

from . import auth
from . import models as m
from .audit import AuditRecord, AuditWriter
from .domain.paths import BadPath, RoutedPath, routed_path
from .domain.policy import match
from .keys import KeyRing, rotate
from .proxy import FORWARDED, Upstreams
from .ratelimit import RateLimiter
from .settings import GatewaySettings

router = APIRouter(tags=["gateway"])


def _state(request: Request) -> tuple[Database, GatewaySettings, Clock]:
    return request.app.state.db, request.app.state.settings, request.app.state.clock


async def key_ring(request: Request) -> KeyRing:
    """Loaded from the database and re-read every KEY_RING_REFRESH_SECONDS, so every replica sees a rotation."""
    app = request.app
    db, settings, clock = _state(request)
    cached: tuple[float, KeyRing] | None = getattr(app.state, "ring", None)
    if cached and time.monotonic() - cached[0] < settings.key_ring_refresh_seconds:
        return cached[1]
    async with db.uow() as uow:
        ring = await KeyRing.load(
            uow.session, app.state.vault, clock.now(), timedelta(seconds=settings.key_grace_seconds)
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
    db, settings, clock = _state(request)
    cached: tuple[float, set[str]] | None = getattr(app.state, "revoked", None)
    if cached and time.monotonic() - cached[0] < settings.revocation_refresh_seconds:
        return cached[1]
    async with db.read() as s:
        ids = set(
            (
                await s.execute(sa.select(m.RevokedToken.jti).where(m.RevokedToken.expires_at > clock.now()))
            ).scalars()
        )
    app.state.revoked = (time.monotonic(), ids)
    return ids


Caller = Annotated[Principal, Depends(caller)]


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
    db, settings, clock = _state(request)
    ring = await key_ring(request)
    ttl, refresh_ttl, now = settings.access_ttl_seconds, settings.refresh_ttl_seconds, clock.now()
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
    db, _, clock = _state(request)
    async with db.uow() as uow:
        await auth.logout(
            uow.session,
            principal.token_id or "",
            principal.expires_at or 0,
            body.refresh_token if body else None,
            clock.now(),
        )
        await uow.commit()
    if principal.token_id:
        (await revoked_tokens(request)).add(principal.token_id)
    return Response(status_code=204)


@router.get("/.well-known/jwks.json", summary="The public keys services verify tokens with")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse((await key_ring(request)).jwks, headers={"Cache-Control": "max-age=60"})


def require_admin(principal: Principal) -> None:
    if principal.role != Role.COMMISSION_ADMIN:
        raise forbidden("only the health commission administers the gateway")


class ClientIn(RequestModel):
    client_id: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    client_secret: str = Field(min_length=16, max_length=200)
    institution_id: uuid.UUID
    community_id: uuid.UUID | None = None


class UserIn(RequestModel):
    username: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=200)
    role: Role
    institution_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None
    resident_id: uuid.UUID | None = None


@router.post("/admin/clients", status_code=201)
async def create_client(body: ClientIn, request: Request, principal: Caller) -> dict[str, Any]:
    require_admin(principal)
    db = request.app.state.db
    secret_hash = await auth.hash_secret(body.client_secret)  # off the event loop
    async with db.uow() as uow:
        if await uow.session.get(m.ApiClient, body.client_id):
            raise Problem(409, "client-exists", "客户端已存在", "A client with this id exists")
        uow.session.add(
            m.ApiClient(
                client_id=body.client_id,
                secret_hash=secret_hash,
                institution_id=body.institution_id,
                community_id=body.community_id,
            )
        )
        await uow.commit()
    return {"client_id": body.client_id, "institution_id": str(body.institution_id)}


@router.post("/admin/users", status_code=201)
async def create_user(body: UserIn, request: Request, principal: Caller) -> dict[str, Any]:
    require_admin(principal)
    if body.role == Role.RESIDENT and body.resident_id is None:
        raise Problem(
            422, "resident-id-required", "居民账号须关联居民", "A resident account needs resident_id"
        )
    if (
        body.role not in (Role.RESIDENT, Role.COMMISSION_ADMIN, Role.INSURANCE_OFFICER)
        and body.institution_id is None
    ):
        raise Problem(
            422, "institution-required", "医务人员账号须关联机构", "A staff account needs institution_id"
        )
    db = request.app.state.db
    password_hash = await auth.hash_secret(body.password)  # off the event loop
    async with db.uow() as uow:
        if await uow.session.get(m.User, body.username):
            raise Problem(409, "user-exists", "用户名已存在", "This username is taken")
        uow.session.add(m.User(password_hash=password_hash, **body.model_dump(exclude={"password"})))
        await uow.commit()
    return {"username": body.username, "role": body.role}


@router.post("/admin/keys/rotate", status_code=201)
async def rotate_keys(request: Request, principal: Caller) -> dict[str, str]:
    require_admin(principal)
    db, _, clock = _state(request)
    vault: PiiVault = request.app.state.vault
    async with db.uow() as uow:
        kid = await rotate(uow.session, vault, clock.now())
        await uow.commit()
    request.app.state.ring = None
    return {"kid": kid}


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: Any
    subject: str
    role: str
    institution_id: uuid.UUID | None
    method: str
    path: str
    status: int
    request_id: str | None


@router.get("/admin/audit", response_model=Page[AuditOut])
async def audit(
    request: Request,
    principal: Caller,
    page: Paging,
    subject: str | None = None,
) -> Page[AuditOut]:
    require_admin(principal)
    async with request.app.state.db.read() as s:
        stmt = where_equal(sa.select(m.AuditEntry), subject=subject).order_by(m.AuditEntry.id.desc())
        return await paginate(s, stmt, page, AuditOut.model_validate)


def _audit(request: Request, principal: Principal, path: str, status: int) -> None:
    writer: AuditWriter = request.app.state.audit
    writer.record(
        AuditRecord(
            at=request.app.state.clock.now(),
            subject=principal.subject,
            role=principal.role,
            institution_id=principal.institution_id,
            method=request.method,
            path=path[:500],  # the column's width; the path check refuses longer ones anyway
            status=status,
            request_id=correlation_id.get(),
        )
    )


def _routed(request: Request) -> RoutedPath:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        return routed_path(raw.decode("latin-1"))
    except BadPath as exc:
        raise Problem(400, "bad-path", "请求路径不合法", f"The path is not allowed: {exc}") from None


def _rate_limited(retry_after: int) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "请求过于频繁，请稍后再试",
        "Too many requests; slow down",
        retry_after=retry_after,
    )


@router.api_route(
    "/api/{service}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def route(service: str, path: str, request: Request, principal: Caller) -> Response:
    """Check the path once, then the policy, the rate limit; forward; audit personal data whatever happens."""
    upstreams: Upstreams = request.app.state.upstreams
    routed = _routed(request)
    rule = match(routed.service, routed.path) if routed.service in upstreams.urls else None
    if rule is None:
        raise Problem(404, "not-found", "资源不存在", "Not found")
    audited = f"/api/{routed.service}{routed.path}"
    if rule.personal_data and not request.app.state.audit.has_room():
        raise Problem(
            503,
            "audit-lagging",
            "审计记录积压，请稍后重试",
            "The audit log is lagging; retry later",
            retry_after=5,
        )
    status = 500
    try:
        if principal.role not in rule.roles:
            raise forbidden(f"a {principal.role} may not call this endpoint")
        limiter: RateLimiter = request.app.state.limiter
        decision = await limiter.take(principal.subject)
        if not decision.allowed:
            raise _rate_limited(decision.retry_after)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        headers["x-request-id"] = correlation_id.get() or headers.get("x-request-id", "")
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        response = await upstreams.forward(
            routed.service, request.method, routed.encoded, request.scope["query_string"], headers, body
        )
        status = response.status_code
    except Problem as problem:
        status = problem.status
        raise
    except DomainError as error:  # a role refused here: audited with the status it is answered with
        status = status_of(error)
        raise
    except HTTPException as exc:
        status = exc.status_code
        raise
    finally:
        if rule.personal_data:
            _audit(request, principal, audited, status)
    passthrough = {
        k: v
        for k, v in response.headers.items()
        if k.lower() in ("content-type", "idempotent-replayed", "retry-after", "location")
    }
    return Response(response.content, status_code=response.status_code, headers=passthrough)
