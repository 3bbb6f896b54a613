"""A broken referral rule, in Chinese and English; the API maps it to a 4xx problem."""

from __future__ import annotations


class RuleViolation(Exception):
    def __init__(self, slug: str, zh: str, en: str, status: int = 422) -> None:
        super().__init__(en)
        self.slug = slug
        self.zh = zh
        self.en = en
        self.status = status
