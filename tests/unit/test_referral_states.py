"""The appointment steps of the referral state machine: a scheduled referral whose booking was cancelled
goes back to accepted, a moved one stays scheduled; only the receiving side and the system take them."""

from __future__ import annotations

import pytest

from services.referral.domain.states import Action, Side, Status, next_status
from shared.errors import Conflict, Forbidden


@pytest.mark.parametrize("side", [Side.RECEIVER, Side.SYSTEM])
def test_unschedule_returns_a_scheduled_referral_to_accepted(side: Side) -> None:
    assert next_status(Status.SCHEDULED, Action.UNSCHEDULE, {side}) == Status.ACCEPTED
    assert next_status(Status.SCHEDULED, Action.RESCHEDULE, {side}) == Status.SCHEDULED


@pytest.mark.parametrize("action", [Action.UNSCHEDULE, Action.RESCHEDULE])
def test_only_a_scheduled_referral_is_unscheduled_or_moved(action: Action) -> None:
    for status in (Status.ACCEPTED, Status.ARRIVED, Status.NO_SHOW, Status.CANCELLED):
        with pytest.raises(Conflict):
            next_status(status, action, {Side.SYSTEM})
    with pytest.raises(Forbidden):
        next_status(Status.SCHEDULED, action, {Side.SENDER, Side.APPROVER})
