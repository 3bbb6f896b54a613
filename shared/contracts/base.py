"""The machinery of event contracts: a model per data shape and version, a contract per event kind that
knows its topic, its types and how each old version becomes the next (an upcaster), and one registry that
producers and consumers both look types up in.

A contract never changes once events of it exist: a field added, dropped, renamed or retyped is a new
version with an upcaster from the previous one, so an event written years ago (still in an outbox, on a
topic being replayed, or in a dead-letter topic waiting for `replay-dlt`) decodes to the current model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.events import EventEnvelope, OutgoingEvent


class EventData(BaseModel):
    """The data of one event, exactly: frozen, and a key the version does not have is refused (a
    producer cannot slip a field onto a topic without a new version)."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)


class ContractError(ValueError):
    """An event no contract reads: bad data (a consumer dead-letters it), never a fault to retry."""


class UnknownEventType(ContractError):
    pass


class UnsupportedVersion(ContractError):
    pass


class MalformedEvent(ContractError):
    pass


Upcaster = Callable[[Any], EventData]


@dataclass(frozen=True)
class Contract:
    """One kind of event: the topic it goes to, its types (`registry.resident.created`, ...), its data
    models by version (`versions[0]` is version 1) and the upcasters between them (`upcasters[0]` takes
    a version-1 model to version 2). Producers write the last version."""

    topic: str
    types: frozenset[str]
    versions: tuple[type[EventData], ...]
    upcasters: tuple[Upcaster, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.versions or len(self.upcasters) != len(self.versions) - 1:
            raise TypeError(
                f"{self.topic}: {len(self.versions)} versions need {len(self.versions) - 1} upcasters"
            )

    @property
    def version(self) -> int:
        return len(self.versions)

    @property
    def model(self) -> type[EventData]:
        return self.versions[-1]

    def read(self, data: Any, version: int) -> EventData:
        """Validate `data` as the version it was written in, then upcast it step by step to the current."""
        if not 1 <= version <= self.version:
            raise UnsupportedVersion(
                f"{self.topic}: schemaversion {version} is not one of 1..{self.version} this code knows"
                " (an event from a newer producer: deploy this consumer's new version, then replay-dlt)"
            )
        try:
            model = self.versions[version - 1].model_validate(data)
            for upcast in self.upcasters[version - 1 :]:
                model = upcast(model)
        except ValidationError as exc:
            raise MalformedEvent(f"{self.topic}: data is not schemaversion {version}: {exc}") from None
        return model


class Registry:
    """Every event type the platform publishes, each to its one contract (and so its one topic)."""

    def __init__(self) -> None:
        self._by_type: dict[str, Contract] = {}

    def add(self, *contracts: Contract) -> None:
        for contract in contracts:
            for type_ in contract.types:
                if type_ in self._by_type:
                    raise TypeError(f"event type {type_} has two contracts")
                self._by_type[type_] = contract

    def contract(self, type_: str) -> Contract:
        try:
            return self._by_type[type_]
        except KeyError:
            raise UnknownEventType(f"no contract for event type {type_!r}") from None

    def items(self) -> list[tuple[str, Contract]]:
        """(type, contract) for every registered type, sorted by type."""
        return sorted(self._by_type.items())

    def topics(self) -> set[str]:
        return {c.topic for c in self._by_type.values()}

    def decode(self, event: EventEnvelope) -> EventData:
        """The event's data as the current version of its contract (upcast from the version it was
        written in); `ContractError` for an unknown type, a future version or data not of its version."""
        return self.contract(event.type).read(event.data, event.schemaversion)

    def event(self, type_: str, data: EventData, *, source: str, subject: str, key: str) -> OutgoingEvent:
        """An event ready for the outbox: the envelope at the contract's current version, on its topic.
        `data` must be the current model of the type's contract (an old version or another contract's
        model is a programming error, refused here rather than found by a consumer)."""
        contract = self.contract(type_)
        if type(data) is not contract.model:
            raise ContractError(
                f"{type_} carries {contract.model.__name__} (version {contract.version}),"
                f" not {type(data).__name__}"
            )
        envelope = EventEnvelope(
            type=type_,
            source=source,
            subject=subject,
            schemaversion=contract.version,
            data=data.model_dump(mode="json", exclude_unset=True),
        )
        return OutgoingEvent(topic=contract.topic, key=key, envelope=envelope)


REGISTRY = Registry()
