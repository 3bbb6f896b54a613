"""Time: stored in UTC, shown and reasoned about in Asia/Shanghai. Tests swap in a fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        """The calendar date in China, which is what contract terms and deadlines are counted in."""
        return self.now().astimezone(SHANGHAI).date()


class FixedClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at
