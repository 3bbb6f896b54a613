"""The gateway's app factory: its own endpoints, the routed services, and one merged OpenAPI."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from shared.app import create_service_app
from shared.clock import Clock
from shared.pii import PiiVault, split_keys

from .api import ROUTERS
from .audit import AuditWriter
from .proxy import Upstreams
from .ratelimit import RateLimiter
from .settings import GatewaySettings, get_settings
from .throttle import LoginThrottle


def merge_openapi(own: dict[str, Any], upstream: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document: the gateway's paths plus every service's, under `/api/{service}`, with their schemas."""
    merged = copy.deepcopy(own)
    merged["info"] = {
        "title": "Yigongti API / 医共体平台接口",
        "version": own.get("info", {}).get("version", "0.1.0"),
    }
    paths = merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for service, spec in upstream.items():
        for path, item in spec.get("paths", {}).items():
            paths[f"/api/{service}{path}"] = item
        schemas.update(spec.get("components", {}).get("schemas", {}))
    merged["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    merged["security"] = [{"bearer": []}]
    for public in ("/oauth/token", "/.well-known/jwks.json"):  # these need no token
        for operation in merged["paths"].get(public, {}).values():
            operation["security"] = []
    return merged


def create_app(settings: GatewaySettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    upstreams = Upstreams(
        {
            "registry": settings.registry_url,
            "referral": settings.referral_url,
            "billing": settings.billing_url,
        },
        settings.upstream_timeout_seconds,
    )
    limiter = RateLimiter.from_settings(settings)  # and the process's one Redis pool, limiter.redis

    async def cleanup() -> None:
        await app.state.audit.close(drain_seconds=3)  # before the database closes: queued rows are written
        await upstreams.close()
        await limiter.close()

    app = create_service_app(
        settings,
        ROUTERS,
        title="Yigongti gateway / 统一入口",
        openapi_url="/gateway-openapi.json",
        docs_url=None,
        cleanup=cleanup,
        max_body_bytes=settings.max_body_bytes,  # the gateway's own endpoints and the routed ones alike
        trust_trace_headers=False,  # the public edge: clients' traceparent headers are not trusted
        state={
            "clock": clock or Clock(),
            "vault": PiiVault(settings.key_secret, split_keys(settings.key_old_secrets)),
            "upstreams": upstreams,
            "ring": None,
            "limiter": limiter,
            "throttle": LoginThrottle.from_settings(settings, limiter.redis),
        },
    )

    app.state.audit = AuditWriter(app.state.db)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        specs: dict[str, dict[str, Any]] = {}
        for service, url in upstreams.urls.items():
            try:
                spec = await upstreams.get_json(f"{url}/openapi.json")
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            if isinstance(spec, dict):
                specs[service] = spec  # a service that is down is missing from the document, not an error
        return JSONResponse(merge_openapi(app.openapi(), specs))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Yigongti API")

    return app
