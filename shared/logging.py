"""One log stream per process: every line, structlog's and the standard library's (uvicorn, aiokafka,
SQLAlchemy, asyncio, alembic), goes to stdout through the same processors: one JSON object per line
(`LOG_JSON=true`) or console text, with `timestamp` (ISO 8601, UTC), `level`, `logger`, `service`,
`event`, `request_id` inside a request (asgi-correlation-id's `X-Request-ID`) and the traceback under
`exception`. The access log is `shared.access_log.AccessLogMiddleware`.

Standard-library records reach the root logger's handler and its structlog `ProcessorFormatter`.
structlog's own events are rendered by structlog and written straight away: a `LogRecord` made, copied
by the formatter and its caller looked up costs more than the line itself (about 35 µs against 15 per
access line). Levels are the standard library's in both cases (`logging.getLogger(name)`'s effective
level), so that setting a logger's level works the same whichever API logs through it."""

from __future__ import annotations

import logging
import sys
import threading

import structlog
from asgi_correlation_id import correlation_id
from structlog.typing import EventDict, Processor, WrappedLogger

# Quiet unless LOG_LEVEL=DEBUG: SQLAlchemy at INFO logs every statement with its parameters, aiokafka
# and asyncio chatter about connections and slow callbacks.
NOISY = ("aiokafka", "sqlalchemy", "asyncio")
# Quiet always: they log each request's URL, query string (national IDs, phones) included, at INFO.
URL_LOGGERS = ("httpx", "httpcore")
# Libraries whose own handlers (uvicorn's default log_config gives it some) are dropped so that what they
# log reaches the root handler, and its formatter, like everything else.
THROUGH_ROOT = ("uvicorn", "uvicorn.error", "alembic", *NOISY, *URL_LOGGERS)

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}

_write_lock = threading.Lock()


def write_line(line: str) -> None:
    """To whatever `sys.stdout` is at the time (a test's capture, a replaced stream), one line at a time."""
    with _write_lock:
        stream = sys.stdout
        stream.write(line + "\n")
        stream.flush()


class StdoutHandler(logging.Handler):
    """The handler configure_logging installs on the root logger, and only that one."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class LineLogger:
    """What structlog's bound loggers wrap: named after, and as enabled as, the stdlib logger of the same
    name; it writes the line the processors rendered."""

    __slots__ = ("_stdlib", "name")

    def __init__(self, stdlib: logging.Logger) -> None:
        self._stdlib = stdlib
        self.name = stdlib.name

    def is_enabled_for(self, level: int) -> bool:
        return self._stdlib.isEnabledFor(level)

    def msg(self, line: str) -> None:
        write_line(line)

    debug = info = warning = warn = error = exception = critical = fatal = msg


_name_logger = structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__])


def _line_logger(*args: str) -> LineLogger:
    """`structlog.get_logger("access")` is named `access`; `structlog.get_logger()` after its module."""
    return LineLogger(_name_logger(*args))


def _filter_by_level(logger: LineLogger, method: str, event: EventDict) -> EventDict:
    if logger.is_enabled_for(LEVELS.get(method, logging.INFO)):
        return event
    raise structlog.DropEvent


def _strip_event(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Some libraries end their messages with a newline (uvicorn's "Exception in ASGI application")."""
    message = event.get("event")
    if isinstance(message, str):
        event["event"] = message.rstrip()
    return event


def _add_request_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    rid = correlation_id.get()
    if rid:
        event["request_id"] = rid
    return event


def _service_adder(service: str) -> Processor:
    def add_service(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        return event

    return add_service


def level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"LOG_LEVEL={level!r} is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return number


# structlog caches each logger on first use, holding the processor list it was given: the list is
# changed in place, so a later configuration (another service, level or format) reaches those too.
_processors: list[Processor] = []


def configure_logging(service: str, level: str = "INFO", as_json: bool = True) -> None:
    """Idempotent: a second call replaces the first one's handler, level, service and format."""
    threshold = level_number(level)
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    )
    common: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        _service_adder(service),
        structlog.processors.StackInfoRenderer(),
        # the console renderer prints tracebacks itself (and warns when they come pre-formatted)
        *([structlog.processors.format_exc_info] if as_json else []),
    ]
    _processors[:] = [_filter_by_level, structlog.contextvars.merge_contextvars, *common, renderer]
    structlog.configure(
        processors=_processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),  # the level: _filter_by_level
        logger_factory=_line_logger,
        cache_logger_on_first_use=True,
    )
    handler = StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.contextvars.merge_contextvars, _strip_event],
            processors=[*common, structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StdoutHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in THROUGH_ROOT:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.NOTSET if threshold <= logging.DEBUG else logging.WARNING)
    for name in URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's access log (the full target, query string included) is replaced by the access middleware;
    # with no handler on its way up uvicorn does not even build the line (as with access_log=False).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
