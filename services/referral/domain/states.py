"""The referral state machine: which action moves which status, and which side may take it.

submitted → accepted | rejected | returned (advice, no visit) | expired; accepted → scheduled →
arrived → completed; scheduled → no-show; cancelled before arrival; out-of-county starts in
pending-approval; a re-request revokes the old referral. Forwarding keeps the referral (and its
history) and only changes its destination. The appointment follows its booking: a cancelled booking
unschedules the referral (back to accepted, so the no-show sweep cannot count a visit nobody expects),
a moved one reschedules it.
"""

from __future__ import annotations

from enum import StrEnum

from shared.errors import Conflict, Forbidden


class Status(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVAL_DENIED = "approval_denied"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RETURNED = "returned"
    EXPIRED = "expired"
    SCHEDULED = "scheduled"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    REVOKED = "revoked"


class Action(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    ACCEPT = "accept"
    REJECT = "reject"
    FORWARD = "forward"
    RETURN = "return"
    SCHEDULE = "schedule"
    UNSCHEDULE = "unschedule"  # the booked appointment was cancelled (by its holder or its session)
    RESCHEDULE = "reschedule"  # the booked appointment moved to another session
    ARRIVE = "arrive"
    COMPLETE = "complete"
    NO_SHOW = "no_show"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REVOKE = "revoke"


class Side(StrEnum):
    """How the actor relates to the referral."""

    SENDER = "sender"  # the referring institution
    RECEIVER = "receiver"  # the institution the referral is addressed to
    APPROVER = "approver"  # the lead hospital's referral office (out of county)
    SYSTEM = "system"  # deadline sweeps, re-requests, and a referral following its booking


S, A = Status, Action
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status, frozenset[Side]]] = {
    A.APPROVE: (frozenset({S.PENDING_APPROVAL}), S.SUBMITTED, frozenset({Side.APPROVER})),
    A.DENY: (frozenset({S.PENDING_APPROVAL}), S.APPROVAL_DENIED, frozenset({Side.APPROVER})),
    A.ACCEPT: (frozenset({S.SUBMITTED}), S.ACCEPTED, frozenset({Side.RECEIVER})),
    A.REJECT: (frozenset({S.SUBMITTED}), S.REJECTED, frozenset({Side.RECEIVER})),
    A.FORWARD: (frozenset({S.SUBMITTED}), S.SUBMITTED, frozenset({Side.RECEIVER})),
    A.RETURN: (frozenset({S.SUBMITTED}), S.RETURNED, frozenset({Side.RECEIVER})),
    A.SCHEDULE: (frozenset({S.ACCEPTED, S.SCHEDULED}), S.SCHEDULED, frozenset({Side.RECEIVER})),
    A.UNSCHEDULE: (frozenset({S.SCHEDULED}), S.ACCEPTED, frozenset({Side.RECEIVER, Side.SYSTEM})),
    A.RESCHEDULE: (frozenset({S.SCHEDULED}), S.SCHEDULED, frozenset({Side.RECEIVER, Side.SYSTEM})),
    A.ARRIVE: (frozenset({S.ACCEPTED, S.SCHEDULED}), S.ARRIVED, frozenset({Side.RECEIVER})),
    A.COMPLETE: (frozenset({S.ARRIVED}), S.COMPLETED, frozenset({Side.RECEIVER})),
    A.NO_SHOW: (frozenset({S.SCHEDULED}), S.NO_SHOW, frozenset({Side.RECEIVER, Side.SYSTEM})),
    A.CANCEL: (
        frozenset({S.PENDING_APPROVAL, S.SUBMITTED, S.ACCEPTED, S.SCHEDULED}),
        S.CANCELLED,
        frozenset({Side.SENDER}),
    ),
    A.EXPIRE: (frozenset({S.SUBMITTED}), S.EXPIRED, frozenset({Side.SYSTEM})),
    A.REVOKE: (
        frozenset({S.PENDING_APPROVAL, S.SUBMITTED, S.REJECTED, S.RETURNED, S.EXPIRED, S.APPROVAL_DENIED}),
        S.REVOKED,
        frozenset({Side.SYSTEM}),
    ),
}
OPEN = frozenset({S.PENDING_APPROVAL, S.SUBMITTED, S.ACCEPTED, S.SCHEDULED, S.ARRIVED})


def next_status(status: Status, action: Action, sides: set[Side]) -> Status:
    """The status after `action`; `Forbidden` for the wrong side, `Conflict` for the wrong status."""
    allowed_from, target, allowed_sides = TRANSITIONS[action]
    if not sides & allowed_sides:
        raise Forbidden(
            "not-your-referral-step",
            f"当前用户不能对此转诊执行“{action}”",
            f"You may not {action} this referral",
        )
    if status not in allowed_from:
        raise Conflict(
            "illegal-transition",
            f"转诊状态为 {status}，不能执行 {action}",
            f"A referral in status {status} cannot be {action}ed",
        )
    return target
