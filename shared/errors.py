"""Domain errors: what went wrong, in Chinese and English, and nothing about HTTP.

The domain and the use cases raise these; which status a kind becomes, and the problem+json it is
written as, is decided in one place at the edge (`shared.problems`). So a rule can be tested, and a use
case run from a worker or a script, without a web framework, and the same kind of error always gets the
same status. The `code` is the stable slug clients see as the problem type
(`https://yigongti.example/problems/<code>`), so it must never change once published.

Four kinds cover every rule the services have: the thing is not there (or not for you), the state does
not allow it now, the caller may not, the request breaks a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ItemError:
    """One refused item of a batch: what it was (`where`, e.g. its index and number) and why, so the client
    can fix every item in one go. Rendered as a problem of its own inside the batch's."""

    code: str
    zh: str
    en: str
    where: dict[str, Any] = field(default_factory=dict)


class DomainError(Exception):
    """A broken rule: a `code` slug, the message in both languages, an optional `detail` (which object,
    which value) and `extra` fields for the body (e.g. `current_version`). Raise one of the kinds below,
    never this base: the edge maps kinds, not codes."""

    def __init__(
        self,
        code: str,
        zh: str,
        en: str,
        detail: str | None = None,
        *,
        items: Sequence[ItemError] = (),
        **extra: Any,
    ) -> None:
        super().__init__(en)
        self.code = code
        self.zh = zh
        self.en = en
        self.detail = detail
        self.items = tuple(items)
        self.extra = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.en!r})"


class NotFound(DomainError):
    """The object does not exist, or is outside what the caller may see (so its existence does not leak)."""


class Conflict(DomainError):
    """The request is well formed but the current state does not allow it (a duplicate, a stale version,
    a step the state machine does not have from here, a closed period)."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Invalid(DomainError):
    """The request breaks a rule of the domain (a value out of range, a reference that does not exist)."""


def not_found(what_zh: str, what_en: str, ident: object) -> NotFound:
    """The one wording of 'no such X' (code `not-found`), naming the object in the detail."""
    return NotFound("not-found", f"{what_zh}不存在", f"{what_en} not found", detail=f"{what_en} {ident}")


def unknown_reference(what_zh: str, what_en: str, detail: str) -> Invalid:
    """A body names an object that does not exist or is inactive: the body is wrong (not a 'not found'
    of the addressed resource), so it is `Invalid`."""
    return Invalid("unknown-reference", f"{what_zh}不存在或已停用", f"Unknown or inactive {what_en}", detail)


def forbidden(en: str, zh: str = "无权执行此操作") -> Forbidden:
    """The one code for 'you may not' (`forbidden`); `en` says what, for the operator and the client."""
    return Forbidden("forbidden", zh, en)


def stale_version(current_version: int) -> Conflict:
    """Optimistic concurrency: the client's copy is older than the stored one."""
    return Conflict(
        "stale-version",
        "数据已被他人修改，请刷新后重试",
        "The record changed since you read it; reload and retry",
        current_version=current_version,
    )
