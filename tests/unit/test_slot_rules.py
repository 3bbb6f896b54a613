import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.referral.domain.rules import URGENCY_RANK, Urgency
from services.referral.domain.slots import (
    Channel,
    Pool,
    PoolSplit,
    SlotPolicy,
    check_session_times,
    compliant,
    open_pools,
    opens_at,
    pools_for,
    split_capacity,
)
from services.referral.usecases import slot_memory
from shared.errors import Invalid

START = datetime(2026, 3, 20, 0, 30, tzinfo=UTC)


def test_split_rounds_the_family_doctor_share_up() -> None:
    assert split_capacity(100, SlotPolicy()) == PoolSplit(priority=10, family_doctor=30, public=60)
    odd = split_capacity(7, SlotPolicy())
    assert odd.family_doctor_total == 3 and odd.public == 4  # ceil(2.8)
    assert split_capacity(1, SlotPolicy(priority_share=Decimal(0))).family_doctor_total == 1
    half = split_capacity(10, SlotPolicy(family_doctor_share=Decimal("0.5"), priority_share=Decimal(0)))
    assert (half.family_doctor_total, half.public) == (5, 5)


@pytest.mark.parametrize("share", ["0.39", "0.3999", "1.5"])
def test_share_cannot_go_below_the_floor(share: str) -> None:
    with pytest.raises(Invalid) as err:
        SlotPolicy(family_doctor_share=Decimal(share))
    assert err.value.code == "share-below-floor"


def test_priority_must_fit_in_the_family_doctor_share() -> None:
    with pytest.raises(Invalid):
        SlotPolicy(priority_share=Decimal("0.5"))


@pytest.mark.parametrize("capacity", [0, -1, 10_001])
def test_capacity_bounds(capacity: int) -> None:
    with pytest.raises(Invalid):
        split_capacity(capacity, SlotPolicy())


def test_session_times() -> None:
    now = START - timedelta(days=1)
    check_session_times(START, START + timedelta(hours=4), now)
    for start, end, when in (
        (START, START, now),
        (START, START - timedelta(hours=1), now),
        (START, START + timedelta(hours=2), START),
        (START, START + timedelta(hours=25), now),
    ):
        with pytest.raises(Invalid):
            check_session_times(start, end, when)


def test_family_doctors_book_earlier_than_the_public() -> None:
    policy = SlotPolicy()
    assert opens_at(Pool.PUBLIC, START, policy) == START - timedelta(days=7)
    assert opens_at(Pool.FAMILY_DOCTOR, START, policy) == START - timedelta(days=12)
    nine_days_before = START - timedelta(days=9)
    assert open_pools([Pool.PRIORITY, Pool.FAMILY_DOCTOR, Pool.PUBLIC], START, nine_days_before, policy) == [
        Pool.PRIORITY,
        Pool.FAMILY_DOCTOR,
    ]


def test_channels_and_pools() -> None:
    assert pools_for(Channel.RESIDENT, False) == [Pool.PUBLIC]
    assert pools_for(Channel.FAMILY_DOCTOR, True) == [Pool.FAMILY_DOCTOR]
    assert pools_for(Channel.COORDINATOR, True)[0] == Pool.PRIORITY
    assert Pool.PRIORITY not in pools_for(Channel.COORDINATOR, False)


def test_waitlist_order_and_compliance() -> None:
    t = START
    queue = [(Urgency.ROUTINE, t), (Urgency.EMERGENCY, t + timedelta(hours=1)), (Urgency.URGENT, t)]
    ordered = sorted(queue, key=lambda e: (URGENCY_RANK[e[0]], e[1]))  # the waitlist's ORDER BY
    assert [u for u, _ in ordered] == [Urgency.EMERGENCY, Urgency.URGENT, Urgency.ROUTINE]
    assert compliant(40, 100) and not compliant(39, 100) and compliant(0, 0)


def test_full_pools_memory_lasts_a_second_of_either_clock_and_ends_when_a_slot_frees() -> None:
    session = uuid.uuid4()
    key = (session, ("public",))
    now = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    slot_memory.full_pools.put(key, now)
    assert slot_memory.still_full(key, now + timedelta(milliseconds=500))
    assert not slot_memory.still_full(key, now + timedelta(minutes=11))  # holds expired meanwhile
    assert not slot_memory.still_full(key, now - timedelta(seconds=1))
    slot_memory.slot_freed(session)
    assert not slot_memory.still_full(key, now)
