"""The referral rules a county's health commission sets: response deadlines, expiry, the no-show and
follow-up grace periods, the slot pools' shares and windows, the release cut-off and the hold time.

Stored per county with history (`shared.county_policy`), in whole units named in the field, so an officer
reads and writes plain numbers. The domain works with `Policy` (deadlines) and `SlotPolicy` (slots); this
is the one place that converts between them. Defaults: the seeds' numbers (004 §十: 40 % family-doctor
share, 24 h release cut-off) and the service's working defaults where the seeds are silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

from shared.errors import Invalid

from .rules import Policy
from .slots import FAMILY_DOCTOR_FLOOR, SlotPolicy

# (field, lowest, highest): a value outside is a mistake, not a policy (a 0-minute hold, a 10-year wait)
BOUNDS = {
    "emergency_response_minutes": (1, 24 * 60),
    "urgent_response_hours": (1, 7 * 24),
    "routine_response_hours": (1, 30 * 24),
    "expire_after_days": (1, 90),
    "no_show_after_days": (1, 90),
    "follow_up_grace_days": (0, 60),
    "public_opens_before_days": (1, 90),
    "family_doctor_head_start_days": (0, 60),
    "release_before_hours": (0, 14 * 24),
    "hold_minutes": (1, 24 * 60),
}


@dataclass(frozen=True)
class ReferralRules:
    emergency_response_minutes: int = 30
    urgent_response_hours: int = 4
    routine_response_hours: int = 48
    expire_after_days: int = 7  # unanswered this long after submission: expired
    no_show_after_days: int = 7  # scheduled, no arrival this long after the appointment: no-show
    follow_up_grace_days: int = 3
    family_doctor_share: Decimal = FAMILY_DOCTOR_FLOOR  # of every session, never below 40 % (004 §十)
    priority_share: Decimal = Decimal("0.10")  # carved out of the family-doctor share
    public_opens_before_days: int = 7
    family_doctor_head_start_days: int = 5  # the family-doctor pools open this much earlier
    release_before_hours: int = 24  # unbooked family-doctor slots go public this long before the session
    hold_minutes: int = 10

    def check(self) -> None:
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise Invalid(
                    "bad-setting",
                    f"设置项 {name} 须在 {low}–{high} 之间",
                    f"setting {name} must be {low}–{high}",
                    field=name,
                )
        if not (
            self.emergency_response_minutes <= self.urgent_response_hours * 60
            and self.urgent_response_hours <= self.routine_response_hours
        ):
            raise Invalid(
                "bad-setting",
                "急诊的答复时限不得长于加急，加急不得长于普通",
                "response deadlines must not grow with urgency: emergency ≤ urgent ≤ routine",
            )
        self.slot_policy()  # the share floor and the priority share's fit are SlotPolicy's own rules

    def policy(self) -> Policy:
        return Policy(
            emergency_response=timedelta(minutes=self.emergency_response_minutes),
            urgent_response=timedelta(hours=self.urgent_response_hours),
            routine_response=timedelta(hours=self.routine_response_hours),
            expire_after=timedelta(days=self.expire_after_days),
            no_show_after=timedelta(days=self.no_show_after_days),
            follow_up_grace_days=self.follow_up_grace_days,
        )

    def slot_policy(self) -> SlotPolicy:
        return SlotPolicy(
            family_doctor_share=self.family_doctor_share,
            priority_share=self.priority_share,
            public_opens_before=timedelta(days=self.public_opens_before_days),
            family_doctor_head_start=timedelta(days=self.family_doctor_head_start_days),
            release_before=timedelta(hours=self.release_before_hours),
            hold_for=timedelta(minutes=self.hold_minutes),
        )

    @classmethod
    def of(cls, policy: Policy, slots: SlotPolicy) -> DeployedRules:
        """The deployment's configured rules (app state): what a county that has recorded no settings
        runs on. Kept as given (a test or a deployment may use sub-minute durations)."""
        return DeployedRules(policy, slots)


class CountyRules(Protocol):
    """What the use cases ask of a county's rules, stored (`ReferralRules`) or deployed (`DeployedRules`)."""

    def policy(self) -> Policy: ...

    def slot_policy(self) -> SlotPolicy: ...


@dataclass(frozen=True)
class DeployedRules:
    deadlines: Policy
    slots: SlotPolicy

    def policy(self) -> Policy:
        return self.deadlines

    def slot_policy(self) -> SlotPolicy:
        return self.slots

    def as_settings(self) -> ReferralRules:
        """In the settings' whole units (what a commission sees before its first change)."""
        p, sl = self.deadlines, self.slots
        return ReferralRules(
            emergency_response_minutes=max(1, int(p.emergency_response.total_seconds() // 60)),
            urgent_response_hours=max(1, int(p.urgent_response.total_seconds() // 3600)),
            routine_response_hours=max(1, int(p.routine_response.total_seconds() // 3600)),
            expire_after_days=max(1, p.expire_after.days),
            no_show_after_days=max(1, p.no_show_after.days),
            follow_up_grace_days=p.follow_up_grace_days,
            family_doctor_share=sl.family_doctor_share,
            priority_share=sl.priority_share,
            public_opens_before_days=max(1, sl.public_opens_before.days),
            family_doctor_head_start_days=sl.family_doctor_head_start.days,
            release_before_hours=int(sl.release_before.total_seconds() // 3600),
            hold_minutes=max(1, int(sl.hold_for.total_seconds() // 60)),
        )
