"""Refusals of a batch (claims from a HIS, out-of-county care records from the agency): every refused item
with its index and number, so the sender can fix them all in one go; the batch is stored whole or not at
all."""

from __future__ import annotations

from collections.abc import Collection

from shared.errors import Conflict, Invalid, ItemError


class Refusals:
    """`key`: the name of an item's number (claim_no, record_no); `several`: the code of a refusal for
    several reasons; `conflicts`: codes that are the state, not the items, in the way (a `Conflict` when
    they are the only reason)."""

    def __init__(
        self,
        key: str = "claim_no",
        several: str = "claims-rejected",
        noun: tuple[str, str] = ("条结算单", "claim(s)"),
        conflicts: Collection[str] = ("period-closed",),
    ) -> None:
        self.items: list[ItemError] = []
        self.key, self.several, self.noun, self.conflicts = key, several, noun, frozenset(conflicts)

    def refuse(self, i: int, number: str, code: str, zh: str, en: str) -> None:
        self.items.append(ItemError(code, zh, en, {"index": i, self.key: number}))

    def raise_if_any(self) -> None:
        """Refuse the batch: named after its one reason, or `several` for several."""
        if not self.items:
            return
        codes = {x.code for x in self.items}
        kind = Conflict if codes <= self.conflicts else Invalid
        zh, en = self.noun
        raise kind(
            self.items[0].code if len(codes) == 1 else self.several,
            f"{len(self.items)} {zh}被拒绝，整批未写入",
            f"{len(self.items)} {en} refused; nothing in the batch was stored",
            items=self.items[:100],
        )
