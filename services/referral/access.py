"""Who may do what in the referral service (defence in depth behind the gateway).

Referrals: the sending, receiving and approving institutions act by their side of the referral (which
side may take which step is the state machine's `domain.states`); they, the resident and the health
commission read it. A hospital's HIS takes the receiving side's steps for referrals addressed to its
hospital, naming the practitioner it acts for (audited beside the machine client). Slots: a hospital's
HIS or referral office publishes and stops its own sessions; residents book for themselves, family
doctors for their contracted residents, the receiving hospital's referral office for an accepted
referral. An object outside the caller's reach is reported as not found, so its existence does not
leak. A village doctor is a receiver only at a village clinic (a downward referral home); the
practitioner a HIS names for a clinical step (accepting, returning with advice, completing with the
discharge summary) is a physician. Plain Python: the use cases and queries call these; the routers only pass the caller on.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from shared.errors import Forbidden, Invalid, NotFound, forbidden
from shared.principal import Principal, Role

from .domain.rules import Direction
from .domain.slots import Channel
from .domain.states import Action, Side

SYSTEM = Principal(subject="system", role=Role.COMMISSION_ADMIN)  # the sweeps; every side at once
CLINICAL = {Role.VILLAGE_DOCTOR, Role.FAMILY_DOCTOR, Role.SPECIALIST, Role.REFERRAL_COORDINATOR}
# the receiving institution's staff, and a hospital's HIS acting for a named practitioner
# (`acting_practitioner`); a village doctor receives only where the referral goes to a village clinic
RECEIVING = {Role.REFERRAL_COORDINATOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.HIS_SYSTEM}
VILLAGE_RECEIVERS = {Role.VILLAGE_DOCTOR}
# the steps a HIS takes only for a physician: taking the patient on, advice instead of a visit, and the
# discharge summary (the profession is the registry's, practitioner event v3)
PHYSICIAN_STEPS = frozenset({Action.ACCEPT, Action.RETURN, Action.COMPLETE})
PHYSICIAN = "physician"
SENDERS = {
    Direction.UP: {Role.VILLAGE_DOCTOR, Role.FAMILY_DOCTOR},
    Direction.DOWN: {Role.SPECIALIST, Role.REFERRAL_COORDINATOR},
}
FOLLOW_UP_ROLES = {Role.FAMILY_DOCTOR, Role.VILLAGE_DOCTOR, Role.REFERRAL_COORDINATOR}
PUBLISHERS = {Role.HIS_SYSTEM, Role.REFERRAL_COORDINATOR}
NO_SHOW_RECORDERS = {Role.REFERRAL_COORDINATOR, Role.HIS_SYSTEM}
COMPLIANCE_READERS = {Role.COMMISSION_ADMIN, Role.REFERRAL_COORDINATOR, Role.HIS_SYSTEM}


class ReferralParties(Protocol):
    """What access needs of a referral (a row of `models.Referral`)."""

    @property
    def resident_id(self) -> uuid.UUID: ...
    @property
    def from_institution_id(self) -> uuid.UUID: ...
    @property
    def to_institution_id(self) -> uuid.UUID | None: ...
    @property
    def approver_institution_id(self) -> uuid.UUID | None: ...
    @property
    def to_tier(self) -> str | None: ...


class ActingPractitioner(Protocol):
    """What access needs of the practitioner a HIS names (a row of `models.RmPractitioner`)."""

    @property
    def institution_id(self) -> uuid.UUID: ...
    @property
    def profession(self) -> str: ...


# ---- referrals ----


def sides_of(principal: Principal, r: ReferralParties) -> set[Side]:
    """The sides of the referral the caller stands on (the state machine decides what each may do)."""
    if principal is SYSTEM:
        return {Side.SYSTEM}
    sides: set[Side] = set()
    inst = principal.institution_id
    if inst is None:
        return sides
    if inst == r.from_institution_id and principal.role in CLINICAL:
        sides.add(Side.SENDER)
    if inst == r.to_institution_id and (
        principal.role in RECEIVING or (principal.role in VILLAGE_RECEIVERS and r.to_tier == "village")
    ):
        sides.add(Side.RECEIVER)
    if inst == r.approver_institution_id and principal.role == Role.REFERRAL_COORDINATOR:
        sides.add(Side.APPROVER)
    return sides


def acting_practitioner(principal: Principal, named: uuid.UUID | None) -> uuid.UUID | None:
    """Who acts in person: a HIS client (a machine) must name the practitioner it acts for; a person acts as
    themselves and names nobody."""
    if principal.role == Role.HIS_SYSTEM:
        if named is None:
            raise Invalid(
                "acting-practitioner-required",
                "HIS系统操作转诊须指明执行操作的医务人员（acting_practitioner_id）",
                "A HIS client acting on a referral names the practitioner it acts for "
                "(acting_practitioner_id)",
                field="acting_practitioner_id",
            )
        return named
    if named is not None:
        raise Invalid(
            "acting-practitioner-not-allowed",
            "只有HIS系统需指明执行操作的医务人员，本人操作无需填写",
            "acting_practitioner_id is for HIS clients; a person acts as themselves",
            field="acting_practitioner_id",
        )
    return None


def check_acting_practitioner(principal: Principal, practitioner: ActingPractitioner, action: Action) -> None:
    """The practitioner a HIS acts for works at the HIS's own institution, and is a physician for a
    clinical step (`PHYSICIAN_STEPS`)."""
    if practitioner.institution_id != principal.institution_id:
        raise Invalid(
            "acting-practitioner-elsewhere",
            "执行操作的医务人员不属于该HIS所在机构",
            "The acting practitioner does not work at this HIS client's institution",
            field="acting_practitioner_id",
        )
    if action in PHYSICIAN_STEPS and practitioner.profession != PHYSICIAN:
        raise Invalid(
            "acting-practitioner-not-physician",
            f"接收、退回（诊疗建议）和完成（出院小结）须由医师执行，所指明的人员为 {practitioner.profession}",
            f"Accepting, returning with advice and completing with a discharge summary are a physician's "
            f"steps; the acting practitioner is a {practitioner.profession}",
            field="acting_practitioner_id",
        )


def can_read(principal: Principal, r: ReferralParties) -> bool:
    if principal.role == Role.COMMISSION_ADMIN:
        return True
    if principal.role == Role.RESIDENT:
        return principal.resident_id == r.resident_id
    return principal.institution_id is not None and principal.institution_id in {
        r.from_institution_id,
        r.to_institution_id,
        r.approver_institution_id,
    }


def referral_not_found(ident: object) -> NotFound:
    return NotFound("not-found", "转诊不存在", "Referral not found", detail=str(ident))


def check_sender(principal: Principal, from_institution_id: uuid.UUID, direction: Direction) -> None:
    if principal.institution_id != from_institution_id or principal.role not in SENDERS[direction]:
        raise forbidden(
            f"a {principal.role} of another institution cannot send this {direction}ward referral"
        )


def check_emergency_reviewer(principal: Principal, r: ReferralParties) -> None:
    if principal.institution_id != r.approver_institution_id or principal.role != Role.REFERRAL_COORDINATOR:
        raise forbidden("only the lead hospital's referral office reviews out-of-county emergencies")


def staff_institution(principal: Principal) -> uuid.UUID:
    """The institution an inbox, outbox or approvals list is of: the caller's own."""
    if principal.institution_id is None:
        raise forbidden("this list is for an institution's staff")
    return principal.institution_id


def is_commission(principal: Principal) -> bool:
    return principal.role == Role.COMMISSION_ADMIN


def check_rules_writer(principal: Principal) -> None:
    """The county's referral rules (deadlines, slot shares and windows, hold time): the commission's."""
    if not is_commission(principal):
        raise Forbidden(
            "commission-only",
            "仅卫健委管理员可修改转诊规则",
            "only the health commission changes these rules",
        )


# ---- follow-up visits of downward referrals ----


def owns_a_visit(principal: Principal, owner_institution_ids: Collection[uuid.UUID]) -> bool:
    """The owning team's institution reads a referral's visits without being a party to the referral."""
    return principal.institution_id is not None and principal.institution_id in owner_institution_ids


def check_visit_recorder(principal: Principal, owner_institution_id: uuid.UUID) -> None:
    if principal.institution_id != owner_institution_id or principal.role not in FOLLOW_UP_ROLES:
        raise forbidden("only the owning family-doctor team's institution records this visit")


# ---- sessions and slots ----


def check_publisher(principal: Principal, institution_id: uuid.UUID) -> None:
    if principal.role not in PUBLISHERS or principal.institution_id != institution_id:
        raise forbidden("only the hospital's own HIS or referral office publishes its schedule")


def ensure_session_manager(principal: Principal, institution_id: uuid.UUID) -> None:
    """Stopping a session: its hospital's HIS or referral office; for anyone else it does not exist."""
    if principal.institution_id != institution_id or principal.role not in PUBLISHERS:
        raise not_found_session()


def not_found_session() -> NotFound:
    return NotFound("not-found", "出诊不存在", "Session not found")


def booking_channel(principal: Principal, resident_id: uuid.UUID, hospital_id: uuid.UUID) -> Channel:
    """Who books decides the pools: residents the public pool for themselves, family doctors their
    contracted residents (`check_contracted`), the hospital's own referral office for an accepted
    referral."""
    if principal.role == Role.RESIDENT:
        if principal.resident_id != resident_id:
            raise forbidden("a resident books only for themselves")
        return Channel.RESIDENT
    if principal.role == Role.FAMILY_DOCTOR:
        return Channel.FAMILY_DOCTOR
    if principal.role == Role.REFERRAL_COORDINATOR and principal.institution_id == hospital_id:
        return Channel.COORDINATOR
    raise forbidden(f"a {principal.role} cannot book this session")


def check_contracted(principal: Principal, team_members: Collection[uuid.UUID]) -> None:
    """A family doctor books family-doctor slots for residents contracted with their team."""
    if principal.practitioner_id not in team_members:
        raise Forbidden(
            "not-contracted",
            "只能为本团队签约居民预约家庭医生号源",
            "Family-doctor slots are for residents contracted with your team",
        )


def booking_not_found() -> NotFound:
    return NotFound("not-found", "预约不存在", "Booking not found")


def ensure_booking_holder(
    principal: Principal, resident_id: uuid.UUID, booked_by: str, hospital_id: uuid.UUID
) -> None:
    """Cancelling: the resident, whoever booked, or the hospital's referral office."""
    if not (
        (principal.role == Role.RESIDENT and principal.resident_id == resident_id)
        or principal.subject == booked_by
        or (principal.role == Role.REFERRAL_COORDINATOR and principal.institution_id == hospital_id)
    ):
        raise booking_not_found()


def ensure_no_show_recorder(principal: Principal, hospital_id: uuid.UUID) -> None:
    if principal.institution_id != hospital_id or principal.role not in NO_SHOW_RECORDERS:
        raise booking_not_found()


@dataclass(frozen=True)
class BookingScope:
    """Which bookings a list shows: a resident's own, or those a staff member made or their hospital
    holds."""

    resident_id: uuid.UUID | None
    booked_by: str
    institution_id: uuid.UUID | None


def booking_scope(principal: Principal) -> BookingScope:
    return BookingScope(principal.resident_id, principal.subject, principal.institution_id)


def ensure_waitlist_reader(
    principal: Principal,
    requested_by: str,
    resident_id: uuid.UUID,
    institution_id: uuid.UUID,
) -> None:
    """A waitlist entry is seen by who asked for it, its resident and its hospital."""
    if not (
        requested_by == principal.subject
        or principal.resident_id == resident_id
        or principal.institution_id == institution_id
    ):
        raise waitlist_entry_not_found()


def waitlist_entry_not_found() -> NotFound:
    return NotFound("not-found", "候补不存在", "Waitlist entry not found")


def check_compliance_reader(principal: Principal, institution_id: uuid.UUID) -> None:
    if principal.role not in COMPLIANCE_READERS or (
        principal.role != Role.COMMISSION_ADMIN and principal.institution_id != institution_id
    ):
        raise forbidden("compliance is for the hospital itself and the health commission")
