"""The floor for `bench/request_floor.py`: `GET /v1/regions?limit=&offset=` as a bare ASGI callable (no
framework, no middleware) over an asyncpg pool, answering what the registry answers — the bearer token
verified (ES256, remembered per token as the services do), the page bounds checked, the same two queries
(count, then the page ordered by code), the same JSON body. Run by the bench under uvicorn with the same
options as the services (`python -m uvicorn bench.floor_app:app`); `FLOOR_DSN` and `FLOOR_JWKS` set."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import jwt

COUNT = "SELECT count(*) FROM regions"
PAGE = "SELECT code, name, level, parent_code FROM regions ORDER BY code LIMIT $1 OFFSET $2"

_pool: asyncpg.Pool | None = None
_keys = {
    str(k.key_id): k for k in jwt.PyJWKSet.from_dict(json.loads(os.environ.get("FLOOR_JWKS", "{}"))).keys
}
_verified: dict[str, dict[str, Any]] = {}


async def _send(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _principal(headers: list[tuple[bytes, bytes]]) -> dict[str, Any] | None:
    auth = next((v for k, v in headers if k == b"authorization"), b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    claims = _verified.get(token)
    if claims is None:
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            claims = jwt.decode(token, _keys[kid].key, algorithms=["ES256"], audience="yigongti")
        except (jwt.PyJWTError, KeyError):
            return None
        _verified[token] = claims
    return claims


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(os.environ["FLOOR_DSN"], min_size=2, max_size=10)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await _send(send, 200, b'{"status":"ok"}')
        return
    if scope["path"] != "/v1/regions" or scope["method"] != "GET":
        await _send(send, 404, b'{"status":404}')
        return
    if _principal(scope["headers"]) is None:
        await _send(send, 401, b'{"status":401}')
        return
    query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    try:
        limit, offset = int(query.get("limit", 50)), int(query.get("offset", 0))
    except ValueError:
        limit = offset = -1
    if not (1 <= limit <= 200 and 0 <= offset <= 10_000_000):
        await _send(send, 422, b'{"status":422}')
        return
    assert _pool is not None
    async with _pool.acquire() as conn:
        total = await conn.fetchval(COUNT)
        rows = await conn.fetch(PAGE, limit, offset)
    body = {"items": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}
    await _send(send, 200, json.dumps(body, ensure_ascii=False).encode())
