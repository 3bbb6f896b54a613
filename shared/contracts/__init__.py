"""Event contracts: the one written-down shape of every event on Kafka, for producers and consumers alike.

- One module per producing service (`registry`, `referral`, `billing`) holds a frozen pydantic model per
  data shape and version (`ResidentV1`, `ResidentV2`, ...; the unversioned name is the current one), and the
  `Contract` of each event kind: its topic, its types and an upcaster per version change.
- Producers build the current model from their own domain objects (never from API response models, so an
  API change cannot change a topic) and turn it into an `OutgoingEvent` with `event(...)`; the unit of work
  writes it to the outbox at commit (`shared.db.UnitOfWork.collect`).
- Consumers call `decode(envelope)`: the data validated as the `schemaversion` it was written in, upcast to
  the current model. An unknown type, a future version or data not of its version raises `ContractError`
  (a `ValueError`): bad data, which `shared.consumer` dead-letters instead of retrying.

Changing a contract: add `XV<n+1>`, an upcaster from `XV<n>`, point the alias at it, and test the upcaster
with a stored event of the old version (tests/unit/test_contracts.py). Deploy the consumers first when
they must understand the new version; a version that only drops fields no consumer reads can go either way.
"""

from __future__ import annotations

from shared.events import EventEnvelope, OutgoingEvent

from . import billing, referral, registry
from .base import (
    REGISTRY,
    Contract,
    ContractError,
    EventData,
    MalformedEvent,
    UnknownEventType,
    UnsupportedVersion,
)


def decode(envelope: EventEnvelope) -> EventData:
    """The event's data as the current model of its contract (see `Registry.decode`)."""
    return REGISTRY.decode(envelope)


def event(type_: str, data: EventData, *, source: str, subject: str, key: str) -> OutgoingEvent:
    """An event for the outbox: `data` (the current model of `type_`'s contract) in an envelope at the
    contract's version, addressed to the contract's topic with partition key `key`."""
    return REGISTRY.event(type_, data, source=source, subject=subject, key=key)


def contract_for(type_: str) -> Contract:
    return REGISTRY.contract(type_)


__all__ = [
    "REGISTRY",
    "Contract",
    "ContractError",
    "EventData",
    "MalformedEvent",
    "UnknownEventType",
    "UnsupportedVersion",
    "billing",
    "contract_for",
    "decode",
    "event",
    "referral",
    "registry",
]
