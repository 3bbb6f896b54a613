"""A broken registry rule, with its message in Chinese and English (mapped to a 4xx by the API)."""

from __future__ import annotations


class RuleViolation(Exception):
    def __init__(self, slug: str, zh: str, en: str, status: int = 422) -> None:
        super().__init__(en)
        self.slug = slug
        self.zh = zh
        self.en = en
        self.status = status
