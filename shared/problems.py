"""RFC 9457 problem+json errors with the message in Chinese and English: the one place errors become HTTP.

The domain and the use cases raise `shared.errors` kinds, which know no status; `STATUS` below maps each
kind to its status, and the handlers here write it, validation errors, database errors and stray
exceptions as `application/problem+json`. `Problem` (an error that already is HTTP) is for the edge only:
routers, the gateway's proxy and logins, the request guard. A database integrity error that slipped past
the domain checks becomes a 409, not a 500.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import Conflict, DomainError, Forbidden, Invalid, ItemError, NotFound
from shared.faults import refused_client_side, sqlstate

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://yigongti.example/problems/"
log = structlog.get_logger()


class Problem(Exception):
    """A client error: status, a stable type slug, and the message in both languages."""

    def __init__(
        self,
        status: int,
        slug: str,
        title_zh: str,
        title_en: str,
        detail: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{slug}: {title_en}")
        self.status = status
        self.slug = slug
        self.title_zh = title_zh
        self.title_en = title_en
        self.detail = detail
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": f"{self.title_zh} / {self.title_en}",
            "status": self.status,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


STATUS: dict[type[DomainError], int] = {NotFound: 404, Conflict: 409, Forbidden: 403, Invalid: 422}


def status_of(error: DomainError) -> int:
    """The status of the error's kind (a subclass maps as its kind); 500 for a bare `DomainError`, which
    is a bug: the edge maps kinds, so a rule must say which kind it is."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def _item(item: ItemError) -> dict[str, Any]:
    return {
        **item.where,
        "type": TYPE_BASE + item.code,
        "slug": item.code,
        "title_zh": item.zh,
        "title_en": item.en,
    }


def problem_of(error: DomainError) -> Problem:
    """The problem+json a domain error is answered with: type from its code, status from its kind."""
    status = status_of(error)
    if status == 500:
        log.error("domain_error_without_kind", code=error.code, error=error.en)
        return internal_error()
    extra = dict(error.extra)
    if error.items:
        extra["errors"] = [_item(item) for item in error.items]
    return Problem(status, error.code, error.zh, error.en, error.detail, **extra)


def conflict(slug: str, zh: str, en: str, detail: str | None = None) -> Problem:
    """For the handlers here (a database conflict); rules raise `shared.errors.Conflict`."""
    return Problem(409, slug, zh, en, detail)


def unprocessable(slug: str, zh: str, en: str, detail: str | None = None, **extra: Any) -> Problem:
    """For the edge (the request guard, database errors); rules raise `shared.errors.Invalid`."""
    return Problem(422, slug, zh, en, detail, **extra)


def unavailable_database() -> Problem:
    return Problem(
        503,
        "database-unavailable",
        "数据库暂不可用，请稍后重试",
        "Database unavailable, retry later",
        retry_after=2,
    )


def database_problem(exc: BaseException) -> Problem:
    """What a database error means for the client, by SQLSTATE class.

    22 (data exception: a NUL byte, a number out of range, a bad cast) is the client's input: 422.
    08 (connection), 53 (resources), 57 (shutdown, statement timeout) and a lost socket mean the database
    is really unavailable: 503 with Retry-After. 40 (serialization failure, deadlock) and 55P03 (lock not
    available) are contention the client may retry: 409. Anything else is our bug and stays a 500.
    """
    code = sqlstate(exc)
    if code.startswith("22") or refused_client_side(exc):
        return unprocessable("invalid-data", "数据格式不正确，无法保存", "The data cannot be stored as given")
    if code.startswith("40") or code == "55P03":
        return Problem(
            409,
            "contention",
            "数据正被他人修改，请稍后重试",
            "The data is being changed by someone else; retry",
            retry_after=1,
        )
    if code[:2] in ("08", "53", "57"):
        return unavailable_database()
    if not code and (
        not isinstance(exc, DBAPIError) or isinstance(exc, InterfaceError) or exc.connection_invalidated
    ):
        return unavailable_database()  # refused, reset or timed-out connection; a closed pool
    return internal_error()


def internal_error(request_id: str | None = None) -> Problem:
    extra = {"request_id": request_id} if request_id else {}
    return Problem(
        500,
        "internal-error",
        "服务器内部错误，已记录，请联系运维并提供请求编号",
        "Internal server error; it has been logged — quote the request id to the operator",
        **extra,
    )


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = str(request.url.path) if request is not None else None
    response = JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON)
    if "retry_after" in problem.extra:  # a client told when to retry is told in the header too
        response.headers["Retry-After"] = str(problem.extra["retry_after"])
    return response


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        errors.append(
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg")), "type": err.get("type")}
        )
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    """Every error a service returns is problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(problem_of(exc), request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        p = Problem(
            422,
            "validation-error",
            "请求内容不合法",
            "The request is not valid",
            errors=_validation_errors(exc),
        )
        return problem_response(p, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        zh = {404: "资源不存在", 405: "不支持该方法", 413: "请求体过大", 401: "未认证", 403: "无权访问"}
        p = Problem(
            exc.status_code,
            f"http-{exc.status_code}",
            zh.get(exc.status_code, "请求错误"),
            str(exc.detail),
        )
        return problem_response(p, request)

    async def on_integrity(request: Request, exc: Exception) -> JSONResponse:
        log.warning("integrity_error", error=str(exc).splitlines()[0])
        p = conflict("integrity-conflict", "与现有数据冲突", "The change conflicts with existing data")
        return problem_response(p, request)

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        p = database_problem(exc)
        if p.status >= 500:
            log.error("database_error", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
        return problem_response(p, request)

    async def on_stale(request: Request, exc: Exception) -> JSONResponse:
        p = conflict(
            "stale-version",
            "数据已被他人修改，请刷新后重试",
            "The record changed meanwhile; reload and retry",
        )
        return problem_response(p, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(StaleDataError, on_stale)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(IntegrityError, on_integrity)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(SQLAlchemyTimeoutError, on_database)
    app.add_exception_handler(ConnectionError, on_database)
    app.add_exception_handler(TimeoutError, on_database)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, with the message in Chinese and English",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "title_zh": {"type": "string"},
        "title_en": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
ERROR_STATUSES = {
    "400": "Bad request / 请求错误",
    "401": "Not authenticated / 未认证",
    "403": "Forbidden / 无权访问",
    "404": "Not found / 资源不存在",
    "409": "Conflict / 冲突",
    "413": "Body too large / 请求体过大",
    "422": "Invalid request / 请求内容不合法",
    "429": "Too many requests / 请求过于频繁",
    "503": "Unavailable, retry later / 暂不可用",
}


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation's error answers are documented as what they are: `application/problem+json`
    (FastAPI documents only a 422 of its own shape, as application/json)."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses[status] = {"description": description, "content": content}
    for unused in ("HTTPValidationError", "ValidationError"):
        spec["components"]["schemas"].pop(unused, None)
    return spec
