"""JSON logs for every logger and the access log (shared.logging, shared.access_log)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI

from shared.access_log import AccessLogMiddleware
from shared.logging import StdoutHandler, configure_logging

NATIONAL_ID = "11010519491231002X"
PHONE = "13812345678"

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    """Configures JSON logging for the test and returns a reader of what was logged since the last read
    (every line must be one JSON object); the root logger is put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("unit-test", "INFO", True)
    capsys.readouterr()

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr()
        assert out.err == ""
        return [json.loads(line) for line in out.out.splitlines()]

    yield read
    root.handlers[:] = handlers
    root.setLevel(level)


def tiny_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/v1")

    @router.get("/residents/{ident}")
    async def resident(ident: str) -> dict[str, str]:
        return {"id": ident}

    @router.get("/residents")
    async def residents(national_id: str | None = None, phone: str | None = None) -> list[str]:
        return []

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(router)
    app.add_middleware(AccessLogMiddleware)  # inside: the request id is set when it logs
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    return app


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(tiny_app(), raise_app_exceptions=False, client=("10.1.2.3", 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def access(logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logged if line["logger"] == "access"]


def test_a_library_logger_comes_out_as_json(lines: Lines) -> None:
    logging.getLogger("aiokafka").warning("broker %s unreachable", "kafka:9092")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    (kafka, uvicorn) = lines()
    assert kafka["event"] == "broker kafka:9092 unreachable"
    assert kafka["level"] == "warning" and kafka["logger"] == "aiokafka" and kafka["service"] == "unit-test"
    assert kafka["timestamp"].endswith("Z") and "T" in kafka["timestamp"]
    assert uvicorn["logger"] == "uvicorn.error" and uvicorn["level"] == "info"


def test_exceptions_are_rendered(lines: Lines) -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application\n")
        structlog.get_logger("shared.outbox").exception("relay failed")
    stdlib, native = lines()
    for line in (stdlib, native):
        assert line["level"] == "error" and line["service"] == "unit-test"
        assert "Traceback" in line["exception"] and "ValueError: bad value" in line["exception"]
    assert stdlib["event"] == "Exception in ASGI application"  # uvicorn's trailing newline dropped
    assert native["event"] == "relay failed" and native["logger"] == "shared.outbox"


def test_noisy_libraries_are_quiet_unless_debug(lines: Lines) -> None:
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT %s", NATIONAL_ID)
    logging.getLogger("aiokafka.conn").info("connected")
    logging.getLogger("httpx").info(
        f"HTTP Request: GET http://registry/v1/residents?national_id={NATIONAL_ID}"
    )
    assert lines() == []
    configure_logging("unit-test", "DEBUG", True)
    logging.getLogger("aiokafka.conn").debug("connected")
    logging.getLogger("httpx").info("HTTP Request: GET http://registry/v1/residents?phone=1")  # never
    assert [line["logger"] for line in lines()] == ["aiokafka.conn"]
    configure_logging("unit-test", "INFO", True)
    logging.getLogger("aiokafka.conn").info("connected")
    assert lines() == []


def test_uvicorn_access_log_is_off(lines: Lines) -> None:
    """Even were uvicorn run with its access log on: it would log the target with its query string."""
    target = f"/v1/residents?national_id={NATIONAL_ID}"
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.1.2.3:5555", "GET", target, "1.1", 200
    )
    assert lines() == []
    assert not logging.getLogger("uvicorn.access").propagate


async def test_access_line_has_route_status_duration_and_the_request_id(lines: Lines) -> None:
    rid = uuid.uuid4().hex
    async with client() as c:
        response = await c.get("/v1/residents/42", headers={"X-Request-ID": rid})
        assert response.status_code == 200
        minted = await c.get("/v1/residents/43")  # no header: the middleware makes one up
    first, second = access(lines())
    assert response.headers["X-Request-ID"] == rid == first["request_id"]
    assert second["request_id"] == minted.headers["X-Request-ID"] != rid
    assert first["event"] == "request" and first["level"] == "info" and first["service"] == "unit-test"
    assert first["method"] == "GET" and first["path"] == "/v1/residents/42"
    assert first["route"] == "/v1/residents/{ident}"
    assert first["status"] == 200 and first["bytes"] == len(response.content)
    assert isinstance(first["duration_ms"], float) and 0 <= first["duration_ms"] < 10_000
    assert first["client"] == "10.1.2.3"


async def test_query_strings_never_reach_the_log(lines: Lines) -> None:
    async with client() as c:
        response = await c.get("/v1/residents", params={"national_id": NATIONAL_ID, "phone": PHONE})
        assert response.status_code == 200
        await c.get("/v1/nowhere", params={"national_id": NATIONAL_ID})
    logged = lines()
    assert NATIONAL_ID not in json.dumps(logged) and PHONE not in json.dumps(logged)
    found, missing = access(logged)
    assert found["path"] == "/v1/residents" and found["route"] == "/v1/residents"
    assert missing["path"] == "/v1/nowhere" and missing["route"] is None and missing["status"] == 404


async def test_probes_are_not_logged(lines: Lines) -> None:
    async with client() as c:
        assert (await c.get("/healthz")).status_code == 200
    assert lines() == []


async def test_a_request_whose_app_raised_is_logged_as_500(lines: Lines) -> None:
    rid = uuid.uuid4().hex
    async with client() as c:
        response = await c.get("/v1/boom", headers={"X-Request-ID": rid})
    assert response.status_code == 500
    (line,) = access(lines())
    assert line["status"] == 500 and line["error"] == "RuntimeError" and line["request_id"] == rid
    assert line["route"] == "/v1/boom"


def test_configuring_twice_does_not_duplicate_lines(lines: Lines) -> None:
    configure_logging("unit-test", "INFO", True)
    configure_logging("unit-test", "INFO", True)
    assert sum(isinstance(h, StdoutHandler) for h in logging.getLogger().handlers) == 1
    logging.getLogger("alembic").info("Running upgrade")
    structlog.get_logger("shared.consumer").info("consumed")
    assert [line["event"] for line in lines()] == ["Running upgrade", "consumed"]


def test_console_rendering_when_json_is_off(lines: Lines, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test", "INFO", False)
    logging.getLogger("aiokafka").warning("broker unreachable")
    out = capsys.readouterr().out
    assert "broker unreachable" in out and "aiokafka" in out and not out.startswith("{")


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        configure_logging("unit-test", "LOUD", True)
