"""The routed paths: `/api/{service}/…` checked against the policy (`domain/policy.py`, via
`access.check_route`) and the rate limit, forwarded to the service (`services/gateway/proxy.py`), and
audited when they touch personal data. Included last."""

from __future__ import annotations

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from shared.errors import DomainError
from shared.principal import Principal
from shared.problems import Problem, status_of

from ..access import check_route
from ..audit import AuditRecord, AuditWriter
from ..domain.paths import BadPath, RoutedPath, routed_path
from ..domain.policy import match
from ..proxy import FORWARDED, Upstreams
from ..ratelimit import RateLimiter
from .deps import Caller, clock

router = APIRouter(tags=["gateway"])


def _audit(request: Request, principal: Principal, path: str, status: int) -> None:
    writer: AuditWriter = request.app.state.audit
    writer.record(
        AuditRecord(
            at=clock(request).now(),
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
        check_route(principal, rule)
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
