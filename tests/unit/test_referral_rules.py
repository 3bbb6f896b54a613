"""Referral rules without a database (issue #14): downward referrals to village clinics with a
family-doctor team, the way home continuing an upward referral (one at a time, a re-request staying in
its episode), a village doctor receiving only at a village clinic, and a HIS client naming the
practitioner it acts for (a physician for the clinical steps)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from services.referral.access import acting_practitioner, check_acting_practitioner, sides_of
from services.referral.domain.rules import (
    Direction,
    Place,
    check_continues,
    check_direction,
    check_way_home_free,
    continues_of_replacement,
)
from services.referral.domain.states import Action, Side
from shared.errors import Conflict, DomainError, Invalid
from shared.principal import Principal, Role

COMMUNITY = uuid.uuid4()


def place(tier: str) -> Place:
    return Place(uuid.uuid4(), tier, COMMUNITY, "411081")


HOSPITAL, TOWNSHIP, VILLAGE = place("county"), place("township"), place("village")


def test_a_village_clinic_with_a_team_receives_a_downward_referral() -> None:
    check_direction(Direction.DOWN, HOSPITAL, VILLAGE, destination_has_team=True)
    check_direction(Direction.DOWN, HOSPITAL, TOWNSHIP)


def test_a_village_clinic_without_a_team_does_not() -> None:
    with pytest.raises(Invalid) as caught:
        check_direction(Direction.DOWN, HOSPITAL, VILLAGE)
    assert caught.value.code == "village-without-team" and "团队" in caught.value.zh


@pytest.mark.parametrize(
    ("direction", "origin", "destination"),
    [
        (Direction.DOWN, TOWNSHIP, VILLAGE),  # only a county hospital refers down
        (Direction.DOWN, HOSPITAL, HOSPITAL),
        (Direction.UP, HOSPITAL, VILLAGE),
    ],
)
def test_a_team_does_not_change_the_tiers(direction: Direction, origin: Place, destination: Place) -> None:
    with pytest.raises(Invalid) as caught:
        check_direction(direction, origin, destination, destination_has_team=True)
    assert caught.value.code == "wrong-tier"


@dataclass(frozen=True)
class Upward:
    resident_id: uuid.UUID
    to_institution_id: uuid.UUID | None
    direction: str = "up"
    status: str = "arrived"


RESIDENT = uuid.uuid4()


@pytest.mark.parametrize("status", ["arrived", "completed"])
def test_a_downward_referral_continues_the_upward_one_of_the_episode(status: str) -> None:
    check_continues(
        Direction.DOWN,
        RESIDENT,
        HOSPITAL.institution_id,
        Upward(RESIDENT, HOSPITAL.institution_id, status=status),
    )


@pytest.mark.parametrize(
    ("direction", "upward", "kind", "code"),
    [
        (Direction.UP, Upward(RESIDENT, HOSPITAL.institution_id), Invalid, "continues-only-downward"),
        (
            Direction.DOWN,
            Upward(RESIDENT, HOSPITAL.institution_id, direction="down"),
            Invalid,
            "continues-not-upward",
        ),
        (Direction.DOWN, Upward(uuid.uuid4(), HOSPITAL.institution_id), Invalid, "continues-other-resident"),
        (Direction.DOWN, Upward(RESIDENT, uuid.uuid4()), Invalid, "continues-other-institution"),
        (Direction.DOWN, Upward(RESIDENT, None), Invalid, "continues-other-institution"),  # out of county
        (
            Direction.DOWN,
            Upward(RESIDENT, HOSPITAL.institution_id, status="accepted"),
            Conflict,
            "continues-not-arrived",
        ),
        (
            Direction.DOWN,
            Upward(RESIDENT, HOSPITAL.institution_id, status="scheduled"),
            Conflict,
            "continues-not-arrived",
        ),
    ],
)
def test_what_is_not_the_same_episode(
    direction: Direction, upward: Upward, kind: type[DomainError], code: str
) -> None:
    with pytest.raises(kind) as caught:
        check_continues(direction, RESIDENT, HOSPITAL.institution_id, upward)
    assert caught.value.code == code and caught.value.zh and caught.value.en


HIS = Principal(subject="client:his-1", role=Role.HIS_SYSTEM, institution_id=HOSPITAL.institution_id)
DOCTOR = uuid.uuid4()


@dataclass(frozen=True)
class Parties:
    resident_id: uuid.UUID
    from_institution_id: uuid.UUID
    to_institution_id: uuid.UUID | None
    approver_institution_id: uuid.UUID | None = None
    to_tier: str | None = "county"


def test_a_his_client_is_the_receiving_side_of_referrals_to_its_hospital_only() -> None:
    to_it = Parties(RESIDENT, VILLAGE.institution_id, HOSPITAL.institution_id, HOSPITAL.institution_id)
    from_it = Parties(RESIDENT, HOSPITAL.institution_id, TOWNSHIP.institution_id, to_tier="township")
    assert sides_of(HIS, to_it) == {Side.RECEIVER}  # never the approver, never the sender
    assert sides_of(HIS, from_it) == set()


def village_doctor_at(place: Place) -> Principal:
    return Principal(subject="v", role=Role.VILLAGE_DOCTOR, institution_id=place.institution_id)


@pytest.mark.parametrize("destination", [HOSPITAL, TOWNSHIP])
def test_a_village_doctor_is_no_receiver_of_a_referral_to_another_tier(destination: Place) -> None:
    """Whatever institution their credentials name, a village doctor does not accept, schedule or complete
    a referral to a township centre or a hospital."""
    to_it = Parties(RESIDENT, VILLAGE.institution_id, destination.institution_id, to_tier=destination.tier)
    assert sides_of(village_doctor_at(destination), to_it) == set()


def test_a_village_doctor_receives_a_downward_referral_to_their_clinic() -> None:
    home = Parties(RESIDENT, HOSPITAL.institution_id, VILLAGE.institution_id, to_tier="village")
    assert sides_of(village_doctor_at(VILLAGE), home) == {Side.RECEIVER}


@dataclass(frozen=True)
class Staff:
    institution_id: uuid.UUID
    profession: str = "physician"


def test_a_his_client_names_the_practitioner_it_acts_for() -> None:
    assert acting_practitioner(HIS, DOCTOR) == DOCTOR
    with pytest.raises(Invalid) as missing:
        acting_practitioner(HIS, None)
    assert missing.value.code == "acting-practitioner-required"
    check_acting_practitioner(HIS, Staff(HOSPITAL.institution_id), Action.ACCEPT)
    with pytest.raises(Invalid) as elsewhere:
        check_acting_practitioner(HIS, Staff(TOWNSHIP.institution_id), Action.ARRIVE)
    assert elsewhere.value.code == "acting-practitioner-elsewhere"


@pytest.mark.parametrize("action", [Action.ACCEPT, Action.RETURN, Action.COMPLETE])
@pytest.mark.parametrize("profession", ["nurse", "public_health"])
def test_a_clinical_step_is_taken_for_a_physician_only(action: Action, profession: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_acting_practitioner(HIS, Staff(HOSPITAL.institution_id, profession), action)
    assert caught.value.code == "acting-practitioner-not-physician" and caught.value.zh and caught.value.en


@pytest.mark.parametrize("action", [Action.ARRIVE, Action.SCHEDULE, Action.NO_SHOW, Action.FORWARD])
def test_a_nurse_may_be_named_for_the_other_receiving_steps(action: Action) -> None:
    check_acting_practitioner(HIS, Staff(HOSPITAL.institution_id, "nurse"), action)


DOWN1 = uuid.uuid4()


@pytest.mark.parametrize(
    "status", ["pending_approval", "submitted", "accepted", "scheduled", "arrived", "completed"]
)
def test_one_way_home_per_upward_referral(status: str) -> None:
    with pytest.raises(Conflict) as caught:
        check_way_home_free([(DOWN1, status)], None)
    assert caught.value.code == "way-home-taken" and str(DOWN1) in caught.value.en and caught.value.zh
    check_way_home_free([(DOWN1, status)], DOWN1)  # a re-request replacing it


@pytest.mark.parametrize("status", ["rejected", "returned", "expired", "cancelled", "revoked", "no_show"])
def test_a_way_home_that_ended_without_the_patient_frees_the_episode(status: str) -> None:
    check_way_home_free([(DOWN1, status)], None)


def test_a_re_request_stays_in_its_episode() -> None:
    up, other = uuid.uuid4(), uuid.uuid4()
    assert continues_of_replacement(None, up) == up  # inherited
    assert continues_of_replacement(up, up) == up
    assert continues_of_replacement(up, None) == up  # the sender adds the link it forgot
    assert continues_of_replacement(None, None) is None
    with pytest.raises(Invalid) as caught:
        continues_of_replacement(other, up)
    assert caught.value.code == "replaces-other-episode" and caught.value.zh


def test_a_person_acts_as_themselves() -> None:
    person = Principal(subject="u", role=Role.SPECIALIST, institution_id=HOSPITAL.institution_id)
    assert acting_practitioner(person, None) is None
    with pytest.raises(Invalid) as caught:
        acting_practitioner(person, DOCTOR)
    assert caught.value.code == "acting-practitioner-not-allowed"
