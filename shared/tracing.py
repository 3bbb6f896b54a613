"""OpenTelemetry traces: gateway → service → outbox → Kafka → consumer, in one trace. Off by default.

On only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and neither
`OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`: then `configure_tracing` makes a TracerProvider
whose BatchSpanProcessor sends the spans by OTLP over HTTP/protobuf (`opentelemetry-exporter-otlp-proto-
http`, which reads the other `OTEL_EXPORTER_OTLP_*` variables itself). HTTP/protobuf rather than gRPC: it is
the OTLP default (port 4318), every collector accepts it, and it needs no grpcio (a large native wheel with
threads of its own) in every image. `OTEL_SERVICE_NAME` overrides the service's name; `OTEL_TRACES_SAMPLER`
and `OTEL_RESOURCE_ATTRIBUTES` work as the SDK documents them. The SDK and the exporter are imported only
then: a process with tracing off loads neither.

Off, every span helper here is a shared `nullcontext` (no span object, nothing recorded), and only one
thing is still done: a W3C `traceparent` (and `tracestate`) that came in, on a request or in an event's
envelope, is made current and passed on unchanged to the upstream and to the events raised in its
context. Logs and events of one call chain then share a trace id even while nothing is exported, at the
cost of a header scan per request.

The provider is this module's own, not OpenTelemetry's global one: FastAPI traces every request by itself
as soon as a global provider exists, with the query string (national IDs, phones) in `url.query`. Our
spans say method, route, status, event type and topic, and of an exception its type only, never its
message (the access log's rule).

Spans: a SERVER span per request (`shared.tracing_web.TracingMiddleware`; the gateway sends its request
span's `traceparent` to the service, `services/gateway/proxy.py`), a PRODUCER `create <topic>` span per
event raised (`shared.db.collect` → `stamped`; its context goes into the envelope), a PRODUCER
`publish` span per relay batch linked to each event's `create` span, and a CONSUMER `process <topic>` span
per event consumed, a child of its envelope's context.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from shared.events import OutgoingEvent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from shared.settings import ServiceSettings

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
ROOT = Context()  # a span started under it begins a trace of its own (a request that carried none)
Attributes = Mapping[str, AttributeValue]

log = structlog.get_logger()
_propagator = TraceContextTextMapPropagator()
_NO_SPAN: AbstractContextManager[Span] = nullcontext(trace.INVALID_SPAN)


class _State:
    provider: TracerProvider | None = None
    tracer: trace.Tracer = trace.NoOpTracer()


_state = _State()


def export_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def configure_tracing(
    service_name: str, settings: ServiceSettings | None = None, *, exporter: SpanExporter | None = None
) -> bool:
    """Turn tracing on if the environment asks for it (or `exporter` is given: tests); True when on.

    Once per process: the first web app or worker that calls it sets the provider, later calls keep it
    (a process is one service). An explicit `exporter` replaces whatever was there."""
    if exporter is None:
        if _state.provider is not None:
            return True
        if not export_configured():
            return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol != "http/protobuf":
            log.warning("otel_protocol_ignored", protocol=protocol, used="http/protobuf")
        exporter = OTLPSpanExporter()  # endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_*
    attributes: dict[str, str] = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name}
    if settings is not None:
        attributes["deployment.environment.name"] = settings.environment
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    reset_tracing()
    _state.provider = provider
    _state.tracer = provider.get_tracer("yigongti")
    log.info("tracing_on", service=attributes["service.name"], exporter=type(exporter).__name__)
    return True


def reset_tracing() -> None:
    """Back to off, after exporting what is left (tests; a process exits with the SDK's own flush)."""
    provider, _state.provider, _state.tracer = _state.provider, None, trace.NoOpTracer()
    if provider is not None:
        provider.shutdown()


def force_flush() -> None:
    """Export the spans ended so far now (tests)."""
    if _state.provider is not None:
        _state.provider.force_flush()


def enabled() -> bool:
    return _state.provider is not None


def inject(carrier: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add the W3C `traceparent` (and `tracestate`) of `context`'s span (the current one by default) to
    `carrier`, if there is a valid one; returns `carrier`."""
    _propagator.inject(carrier, context)
    return carrier


def extract(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context a W3C `traceparent` names, None when there is none or it is malformed."""
    if not traceparent:
        return None
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    context = _propagator.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


@contextmanager
def attached(context: Context) -> Iterator[Span]:
    """Make `context` current for the block; its span."""
    token = otel_context.attach(context)
    try:
        yield trace.get_current_span(context)
    finally:
        otel_context.detach(token)


def span(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    *,
    parent: Context | None = None,
    attributes: Attributes | None = None,
    links: Sequence[Link] | None = None,
) -> AbstractContextManager[Span]:
    """A span, current for the block: a child of `parent` (`ROOT`: a new trace; None: the current span).
    An exception marks it failed with `error.type`, the exception's type (never its message).

    Off, no span: only `parent` (an incoming context) is made current, so that it propagates."""
    if _state.provider is None:
        return _NO_SPAN if parent is None or parent is ROOT else attached(parent)
    return _recording(name, kind, parent, attributes, links)


@contextmanager
def _recording(
    name: str,
    kind: SpanKind,
    parent: Context | None,
    attributes: Attributes | None,
    links: Sequence[Link] | None,
) -> Iterator[Span]:
    # start_span and attach by hand: `start_as_current_span` nests two more context managers (~5 µs)
    current = _state.tracer.start_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    )
    token = otel_context.attach(trace.set_span_in_context(current))
    try:
        yield current
    except Exception as exc:
        failed(current, exc)
        raise
    finally:
        otel_context.detach(token)
        current.end()


def failed(current: Span, exc: BaseException) -> None:
    current.set_attribute("error.type", type(exc).__qualname__)
    current.set_status(StatusCode.ERROR)


def links(contexts: Iterable[tuple[str | None, str | None]]) -> list[Link]:
    """Links to the valid (traceparent, tracestate) pairs; none while tracing is off."""
    if _state.provider is None:
        return []
    found = []
    for traceparent, tracestate in contexts:
        context = extract(traceparent, tracestate)
        if context is not None:
            found.append(Link(trace.get_current_span(context).get_span_context()))
    return found


def stamped(event: OutgoingEvent) -> OutgoingEvent:
    """The event with the trace context it was raised in, in its envelope's `traceparent`/`tracestate`
    (CloudEvents' distributed-tracing extension attributes). On: a `create <topic>` span, a child of the
    current span (or a new trace), whose context the envelope carries. Off: the incoming context, if one
    is current, as it came. An event that already carries a context keeps it."""
    envelope = event.envelope
    if envelope.traceparent is not None:
        return event
    context: Context | None = None
    if _state.provider is not None:
        created = _state.tracer.start_span(
            f"create {event.topic}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "create",
                "messaging.destination.name": event.topic,
                "messaging.message.id": envelope.id,
                "cloudevents.event_type": envelope.type,
            },
        )
        created.end()
        context = trace.set_span_in_context(created)
    elif not trace.get_current_span().get_span_context().is_valid:
        return event
    carrier = inject({}, context)
    if TRACEPARENT not in carrier:
        return event
    traced = envelope.model_copy(
        update={TRACEPARENT: carrier[TRACEPARENT], TRACESTATE: carrier.get(TRACESTATE)}
    )
    return dataclasses.replace(event, envelope=traced)
