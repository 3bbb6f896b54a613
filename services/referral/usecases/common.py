"""What every referral change does: check who acts (`access.sides_of`), move the state, write the
timeline, notify the referrer and the resident, and raise the events — all in the caller's unit of work
(which writes the events to the outbox when it commits)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.crud import check_version
from shared.db import collect
from shared.principal import Principal

from .. import events
from .. import models as m
from ..access import sides_of
from ..domain.states import Action, Status, next_status
from ..schemas import ReferralOut

MESSAGES: dict[str, tuple[str, str]] = {
    "submitted": ("转诊已提交，等待接收医院答复", "Referral submitted; waiting for the receiving hospital"),
    "pending_approval": (
        "县外转诊已提交，等待牵头医院审核",
        "Out-of-county referral awaiting the lead hospital's approval",
    ),
    "approve": ("县外转诊已获批准", "Out-of-county referral approved"),
    "deny": ("县外转诊未获批准", "Out-of-county referral not approved"),
    "accept": ("接收医院已接收转诊", "The receiving hospital accepted the referral"),
    "reject": ("接收医院未接收转诊", "The receiving hospital declined the referral"),
    "forward": (
        "转诊已转至其他科室或机构",
        "The referral was forwarded to another department or institution",
    ),
    "return": ("接收医院退回转诊并给出诊疗建议", "The referral was returned with advice; no visit needed"),
    "schedule": ("已预约就诊时间", "An appointment was scheduled"),
    "unschedule": (
        "预约已取消，转诊回到已接收状态，待重新预约",
        "The appointment was cancelled; the referral is accepted again and waits for a new booking",
    ),
    "reschedule": ("就诊时间已变更", "The appointment was moved"),
    "arrive": ("患者已到院", "The patient arrived"),
    "complete": ("诊疗完成，出院小结已提供", "Care completed; discharge summary available"),
    "no_show": ("患者未按预约就诊", "The patient did not attend"),
    "cancel": ("转诊已取消", "The referral was cancelled"),
    "expire": ("转诊超时未答复，已失效", "The referral expired without an answer"),
    "revoke": ("转诊已由新申请替代", "The referral was replaced by a new request"),
    "escalate": ("转诊答复已超时，已上报", "The response deadline passed; escalated"),
    "review": ("急诊县外转诊已事后审核", "Emergency out-of-county referral reviewed afterwards"),
    "follow_up_visit": ("已完成一次随访", "A follow-up visit was recorded"),
    "follow_up_missed": ("随访逾期未完成", "A follow-up visit was missed"),
}

# after these the receiving hospital must act (answer, or book again), so it is told too
RECEIVER_ACTS_NEXT = frozenset({"escalate", "submitted", "approve", "forward", "unschedule"})


async def record(
    s: AsyncSession,
    r: m.Referral,
    principal: Principal,
    action: str,
    from_status: str | None,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> ReferralOut:
    """Timeline entry, notifications to the referrer and the resident, and the event."""
    r.updated_at = now
    await s.flush()
    s.add(
        m.TimelineEntry(
            referral_id=r.id,
            at=now,
            actor=principal.subject,
            role=principal.role,
            institution_id=principal.institution_id,
            action=action,
            from_status=from_status,
            to_status=r.status,
            detail=detail or {},
        )
    )
    zh, en = MESSAGES.get(action, (f"转诊状态：{r.status}", f"Referral status: {r.status}"))
    recipients = [
        ("referrer", str(r.from_practitioner_id or r.from_institution_id)),
        ("resident", str(r.resident_id)),
    ]
    if action in RECEIVER_ACTS_NEXT and r.to_institution_id:
        recipients.append(("receiver", str(r.to_institution_id)))
    for kind, who in recipients:
        note = m.Notification(
            id=uuid.uuid4(),
            referral_id=r.id,
            recipient_kind=kind,
            recipient_id=who,
            message_zh=zh,
            message_en=en,
            created_at=now,
        )
        s.add(note)
        collect(s, events.notification(note))
    await s.flush()
    collect(s, events.referral_step(r, action, from_status, str(principal.role), detail or {}))
    return ReferralOut.model_validate(r)


async def transition(
    s: AsyncSession,
    principal: Principal,
    r: m.Referral,
    action: Action,
    version: int | None,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> tuple[str, Status]:
    """Check version and actor, move the status; the caller sets action-specific fields, then `record`s."""
    if version is not None:
        check_version(r, version)
    before = r.status
    after = next_status(Status(r.status), action, sides_of(principal, r))
    r.status = after
    return before, after
