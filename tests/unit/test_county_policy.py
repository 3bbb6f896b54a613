"""Per-county settings: decoding what a commission sends, and refusing what makes no sense."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from shared.county_policy import decode, encode
from shared.errors import Invalid


@dataclass(frozen=True)
class Rules:
    hold_minutes: int = 15
    target: Decimal = Decimal("0.30")
    enabled: bool = True
    mode: str = "resident"

    def check(self) -> None:
        if self.hold_minutes <= 0:
            raise Invalid("bad-setting", "保留时长须为正", "hold_minutes must be positive")


def test_defaults_round_trip_through_json() -> None:
    assert decode(Rules, encode(Rules())) == Rules()
    assert encode(Rules()) == {"hold_minutes": 15, "target": "0.30", "enabled": True, "mode": "resident"}


def test_a_change_keeps_the_other_settings() -> None:
    changed = decode(Rules, {**encode(Rules()), "target": "0.35", "hold_minutes": 20})
    assert changed == Rules(hold_minutes=20, target=Decimal("0.35"))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"nonsense": 1}, "unknown-setting"),
        ({"hold_minutes": "15"}, "bad-setting"),
        ({"hold_minutes": True}, "bad-setting"),
        ({"hold_minutes": 0}, "bad-setting"),
        ({"target": 0.3}, "bad-setting"),
        ({"target": "NaN"}, "bad-setting"),
        ({"target": "thirty"}, "bad-setting"),
        ({"enabled": 1}, "bad-setting"),
        ({"mode": 3}, "bad-setting"),
    ],
)
def test_bad_settings_are_refused_with_a_code(data: dict[str, object], code: str) -> None:
    with pytest.raises(Invalid) as err:
        decode(Rules, data)
    assert err.value.code == code


@pytest.mark.parametrize("value", ["1e99999999999", "1e-99999999999", "0." + "1" * 40])
def test_decimals_that_would_overflow_a_check_are_refused(value: str) -> None:
    with pytest.raises(Invalid) as err:
        decode(Rules, {"target": value})
    assert err.value.code == "bad-setting"


def test_a_stored_version_stays_readable_after_a_setting_is_retired_or_a_bound_tightened() -> None:
    stored = {"hold_minutes": 0, "target": "0.30", "retired_setting": 5}
    assert decode(Rules, stored, stored=True) == Rules(hold_minutes=0)
