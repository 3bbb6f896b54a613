"""The login back-off arithmetic (services/gateway/throttle.py `Backoff`), without Redis: when a lock
starts, how it grows, where it stops, and what Retry-After a client is told."""

from __future__ import annotations

import pytest

from services.gateway.throttle import Backoff, retry_after

ACCOUNT = Backoff(threshold=5, base_seconds=1, cap_seconds=900, window_seconds=900)


def test_no_lock_below_the_threshold() -> None:
    assert [ACCOUNT.lock_seconds(n) for n in range(5)] == [0, 0, 0, 0, 0]


def test_the_lock_doubles_from_the_threshold_and_stops_at_the_cap() -> None:
    assert [ACCOUNT.lock_seconds(n) for n in range(5, 12)] == [1, 2, 4, 8, 16, 32, 64]
    assert ACCOUNT.lock_seconds(14) == 512
    assert ACCOUNT.lock_seconds(15) == ACCOUNT.lock_seconds(16) == 900  # 15 min, never more


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    assert ACCOUNT.lock_seconds(10**9) == 900  # no float overflow from 2 ** 999999995


def test_the_schedule_the_store_uses_lists_each_lock_up_to_the_cap_in_milliseconds() -> None:
    assert ACCOUNT.schedule_ms() == [
        1000,
        2000,
        4000,
        8000,
        16000,
        32000,
        64000,
        128000,
        256000,
        512000,
        900_000,
    ]
    assert Backoff(3, 2, 2, 60).schedule_ms() == [2000]  # a fixed lock
    assert Backoff(1, 0.25, 1, 60).schedule_ms() == [250, 500, 1000]
    args = Backoff(20, 1, 900, 600).script_args()
    assert args["threshold"] == 20 and args["window"] == 600_000 and args["locks"] == ACCOUNT.schedule_ms()


def test_the_address_allows_more_failures_than_an_account() -> None:
    address = Backoff(threshold=20, base_seconds=1, cap_seconds=900, window_seconds=900)
    assert address.lock_seconds(19) == 0 and address.lock_seconds(20) == 1 and address.lock_seconds(21) == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"threshold": 0, "base_seconds": 1, "cap_seconds": 900, "window_seconds": 900},
        {"threshold": 5, "base_seconds": 0, "cap_seconds": 900, "window_seconds": 900},
        {"threshold": 5, "base_seconds": 10, "cap_seconds": 5, "window_seconds": 900},
        {"threshold": 5, "base_seconds": 1, "cap_seconds": 900, "window_seconds": 0},
    ],
)
def test_nonsense_settings_are_refused_at_start(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)  # type: ignore[arg-type]


def test_retry_after_is_whole_seconds_rounded_up_and_never_zero() -> None:
    assert [retry_after(ms) for ms in (1, 999, 1000, 1001, 899_999)] == [1, 1, 1, 2, 900]
