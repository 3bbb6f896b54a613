"""Text a client sends that PostgreSQL cannot store is refused at the edge, as a 422, in one place.

PostgreSQL rejects a NUL character in text and UTF-8 cannot encode a lone surrogate (JSON allows both,
as `\\u0000` and `\\ud800`). Left alone they reach the database, fail there, and used to look like an
outage. Every request body model derives from `RequestModel`, whose one validator walks every field;
query strings and paths are checked by `shared.app`'s guard middleware with the same `unstorable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator


def unstorable(value: str) -> str | None:
    """Why `value` cannot be stored, or None if it can."""
    if "\x00" in value:
        return "contains a NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def storable(value: str) -> str:
    reason = unstorable(value)
    if reason is not None:
        raise ValueError(f"text {reason} / 文本含有无法保存的字符")
    return value


def check_storable(value: Any) -> Any:
    """Every string inside `value` (lists, dicts and their keys included) must be storable."""
    if isinstance(value, str):
        storable(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_storable(k)
            check_storable(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_storable(item)
    return value


StorableText = Annotated[str, AfterValidator(storable)]


class RequestModel(BaseModel):
    """The base of every request body: unknown fields refused, every string storable."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_storable(value)


def ascii_digits(value: str) -> bool:
    """True for 0-9 only: `str.isdigit()` also accepts '²' or '٣', which `int()` or a check digit refuses."""
    return value.isascii() and value.isdigit()
