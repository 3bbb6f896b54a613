"""The outer guard of every app: what no request may do, whichever route it reaches.

- A path or query string holding text PostgreSQL cannot store (a NUL byte) is a 422 before any route runs.
- A body larger than the limit is a 413, whether it declares its length or streams it (chunked).
- An exception nothing else handled is a problem+json 500 carrying the request id (the traceback goes to
  the log), never a bare text 500 and never a dropped connection.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import structlog
from asgi_correlation_id import correlation_id
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import PROBLEM_JSON, Problem, internal_error, unprocessable
from shared.text import unstorable

log = structlog.get_logger()


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit; an HTTPException so that FastAPI's
    body parsing lets it through as a 413 instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body exceeds {limit} bytes")


def too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", "请求体过大", f"The body exceeds {limit} bytes", limit=limit)


def target_problem(scope: Scope) -> Problem | None:
    """A 422 when the decoded path or a query parameter holds unstorable text."""
    reason = unstorable(scope.get("path", ""))
    if reason is None:
        query = scope.get("query_string", b"").decode("latin-1")
        for key, value in parse_qsl(query, keep_blank_values=True):
            reason = unstorable(key) or unstorable(value)
            if reason is not None:
                break
    if reason is None:
        return None
    return unprocessable("unstorable-text", "请求含有无法保存的字符", f"The request URL {reason}")


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = target_problem(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if problem is None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            problem = too_large(self.max_body_bytes)
        if problem is not None:
            await send_problem(send, scope, problem)
            return
        started = False
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await send_problem(send, scope, too_large(self.max_body_bytes))
        except Exception:
            log.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
            if started:
                raise
            await send_problem(send, scope, internal_error(correlation_id.get()))


async def send_problem(send: Send, scope: Scope, problem: Problem) -> None:
    body: dict[str, Any] = problem.body(scope.get("path"))
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(payload)).encode())]
    if "retry_after" in problem.extra:
        headers.append((b"retry-after", str(problem.extra["retry_after"]).encode()))
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
