"""The one event envelope (CloudEvents 1.0 attributes, structured JSON mode on Kafka).

Written by hand on pydantic rather than with the cloudevents SDK: we need a typed model that
validates incoming events and round-trips through the outbox table, which is these twenty lines.
What `data` holds, per type and `schemaversion`, is written down in `shared.contracts`; producers build
their events there (`OutgoingEvent`) and consumers read them there (`shared.contracts.decode`).

`traceparent` and `tracestate` are CloudEvents' distributed-tracing extension attributes: the W3C trace
context the event was raised in (`shared.tracing.stamped`), which its consumers continue. Optional and left
out of the JSON when absent, so an event without them reads and writes as before; readers ignore envelope
attributes they do not know.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def _absent(value: object) -> bool:
    return value is None


class EventEnvelope(BaseModel):
    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: str
    source: str
    subject: str
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: str = "application/json"
    schemaversion: int = 1
    data: dict[str, Any]
    traceparent: str | None = Field(default=None, exclude_if=_absent)
    tracestate: str | None = Field(default=None, exclude_if=_absent)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate(json.loads(raw))


@dataclass(frozen=True)
class OutgoingEvent:
    """An event a use case raised: where it goes (topic, partition key) and what it says. The unit of work
    collects these and writes them to the outbox right before it commits (`shared.db.UnitOfWork`)."""

    topic: str
    key: str
    envelope: EventEnvelope
