"""Downward follow-up plans: visits at a fixed interval, missed ones flagged after a grace period."""

from __future__ import annotations

from datetime import date, timedelta

from shared.errors import Invalid


def plan_visits(start: date, interval_days: int, visits: int) -> list[date]:
    if not 1 <= interval_days <= 180 or not 1 <= visits <= 52:
        raise Invalid(
            "follow-up-plan",
            "随访间隔须为1–180天，次数1–52次",
            "Follow-up interval must be 1–180 days and 1–52 visits",
        )
    return [start + timedelta(days=interval_days * (i + 1)) for i in range(visits)]


def is_missed(due: date, done: bool, today: date, grace_days: int) -> bool:
    return not done and today > due + timedelta(days=grace_days)
