"""The referral suites start each test with nothing remembered per process: the tests truncate the
county's rules between them (tests/conftest.py), which a real deployment never does behind the service's
back, so the two-second memory of each county's rules (`county_rules`) is cleared around every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.referral.usecases import slot_memory
from services.referral.usecases.county_rules import forget_rules


@pytest.fixture(autouse=True)
def nothing_remembered() -> Iterator[None]:
    forget_rules()
    slot_memory.full_pools.clear()
    yield
    forget_rules()
    slot_memory.full_pools.clear()
