"""The registry rules a county's health commission sets: the family-doctor coverage targets (002 §21),
the first-in-county catalogue's minimum (004 §十一) and the posting rules (004 §七).

Stored per county with history (`shared.county_policy`); the defaults are the seeds' numbers. The domain
works with `CoverageTargets` and `PostingRules`; this is the one place that converts to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from shared.clock import SHANGHAI
from shared.errors import Invalid

from .coverage import CoverageTargets
from .postings import PostingRules
from .practitioners import PHYSICIAN_LADDER, Title

TARGETS = ("coverage_target_residents", "coverage_target_key_populations", "coverage_target_registered_poor")
# (field, lowest, highest): a value outside is a mistake, not a policy
BOUNDS = {"first_in_county_minimum": (0, 2000), "posting_min_months": (1, 60)}


def _bad(name: str, zh: str, en: str) -> Invalid:
    return Invalid("bad-setting", f"设置项 {name} {zh}", f"setting {name} {en}", field=name)


@dataclass(frozen=True)
class RegistryRules:
    coverage_target_residents: Decimal = Decimal("0.30")
    coverage_target_key_populations: Decimal = Decimal("0.60")
    coverage_target_registered_poor: Decimal = Decimal("1.00")
    first_in_county_minimum: int = 50  # diseases on the first-in-county catalogue
    posting_min_months: int = 6  # a resident (stationed) posting lasts at least this long
    posting_physician_min_title: str = Title.ATTENDING.value  # a posted physician holds this or above

    def check(self) -> None:
        for name in TARGETS:
            value: Decimal = getattr(self, name)
            exponent = value.normalize().as_tuple().exponent
            if not Decimal(0) <= value <= Decimal(1) or (isinstance(exponent, int) and exponent < -4):
                raise _bad(
                    name, "须为 0–1 之间的比例（最多四位小数）", "must be a share 0–1, four decimals at most"
                )
        for name, (low, high) in BOUNDS.items():
            if not low <= getattr(self, name) <= high:
                raise _bad(name, f"须在 {low}–{high} 之间", f"must be {low}–{high}")
        if self.posting_physician_min_title not in PHYSICIAN_LADDER:
            raise _bad(
                "posting_physician_min_title",
                "须为医师职称之一",
                "must be a physician's title: " + ", ".join(t.value for t in PHYSICIAN_LADDER),
            )

    def coverage_targets(self) -> CoverageTargets:
        return CoverageTargets(
            residents=self.coverage_target_residents,
            key_populations=self.coverage_target_key_populations,
            registered_poor=self.coverage_target_registered_poor,
        )

    def posting_rules(self) -> PostingRules:
        return PostingRules(self.posting_min_months, Title(self.posting_physician_min_title))


def end_of(day: date) -> datetime:
    """The last moment of a calendar day in China: the rules in force "on" that day are those changed
    before it ended."""
    return datetime.combine(day + timedelta(days=1), time(), SHANGHAI) - timedelta(microseconds=1)
