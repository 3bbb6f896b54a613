"""Event contracts: events stored at an old version decode (upcast) to the current one without the personal
data the new version dropped; what producers emit validates against its contract and, where the contract
did not change, is byte for byte what the API's response models used to put on the topic; unknown types,
future versions and malformed data fail with a `ContractError` (bad data: dead-lettered, never retried)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from services.billing import events as billing_events
from services.billing import models as bm
from services.billing.domain.ledger import Journal
from services.billing.schemas import BudgetOut, DisputeOut
from services.referral import events as referral_events
from services.referral import models as rm
from services.referral.domain.states import Action, Status
from services.referral.schemas import BookingOut, NotificationOut, SessionOut
from services.registry import events as registry_events
from services.registry import models as m
from services.registry.schemas import (
    CatalogueEntryOut,
    CommunityOut,
    ContractOut,
    DepartmentOut,
    InstitutionOut,
    ResidentOut,
    TeamMemberOut,
    TeamOut,
)
from shared import contracts
from shared.contracts import referral as ref
from shared.contracts import registry as reg
from shared.events import EventEnvelope
from shared.faults import is_transient

# Copied from a registry outbox as the code before the contracts wrote it (the demo loader's synthetic
# resident): the API's ResidentOut, name and masked identifiers included, at schemaversion 1.
STORED_RESIDENT_V1 = """{"id": "eedeb958-5362-454d-9224-6fb85d7665c1", "data": {"id": "307484b3-940f-4a69-b448-0d3bfdc20a08",
"name": "张珍磊", "active": true, "gender": "female", "version": 1, "birth_date": "1966-08-21",
"region_code": "411081", "community_id": "938e93ae-fc8a-4270-9605-0329398aae12", "phone_masked": "134****5170",
"key_populations": ["disabled"], "national_id_masked": "411081********1221",
"home_institution_id": "a06f7493-1468-4b49-bf67-ab39f335e2a2"}, "time": "2026-11-23T14:42:41.402554Z",
"type": "registry.resident.created", "source": "/registry", "subject": "resident/307484b3-940f-4a69-b448-0d3bfdc20a08",
"specversion": "1.0", "schemaversion": 1, "datacontenttype": "application/json"}"""

STORED_CONTRACT_V1 = """{"id": "ddd44eb0-ae9b-4e86-984b-498f18c24929", "data": {"id": "becd6952-0ad5-4883-a598-c5c34fd17ff6",
"status": "terminated", "team_id": "d61d33d1-48bf-4f9c-b8c9-0af767035f77", "version": 2, "end_date": "2026-12-31",
"start_date": "2026-01-01", "resident_id": "ebdcd0f3-9161-4c58-9c22-6fa7a54c67da",
"community_id": "dc4c3bbf-ed70-4e00-a3f8-9ddc00d25797", "terminated_at": "2026-06-01T08:00:00Z",
"key_populations": ["elderly", "severe_mental"], "termination_reason": "张珍磊 moved to Zhengzhou",
"previous_contract_id": null}, "time": "2026-11-23T13:43:28.611722Z", "type": "registry.contract.terminated",
"source": "/registry", "subject": "contract/becd6952-0ad5-4883-a598-c5c34fd17ff6", "specversion": "1.0",
"schemaversion": 1, "datacontenttype": "application/json"}"""

STORED_PRACTITIONER_V1 = """{"id": "1b89885b-3a57-483f-887d-368ff05916a8", "data": {"id": "17d8a397-1c73-4547-8cb8-e988ed1f1785",
"name": "gp1", "title": "attending", "active": true, "version": 1, "postings": [], "licence_no": "BB56gp1",
"specialties": [], "institution_id": "7889bcde-adb6-471d-a2db-c53c92aa60f7", "general_practitioner": true},
"time": "2026-11-23T13:43:28.407497Z", "type": "registry.practitioner.created", "source": "/registry",
"subject": "practitioner/17d8a397-1c73-4547-8cb8-e988ed1f1785", "specversion": "1.0", "schemaversion": 1,
"datacontenttype": "application/json"}"""

# A referral event as the code before the contracts wrote it (the API's ReferralOut plus the flat step),
# with the free text a later step adds (a completion's outcome and discharge summary).
STORED_REFERRAL_V1 = """{"id": "6496de6f-bdd5-464e-98a0-181bcea112df", "data": {"id": "9a79fbe2-a6d2-4083-bbc1-f507ca7c2745",
"event": {"role": "specialist", "actor": "specialist@hospital1", "action": "complete", "from_status": "arrived",
"outcome": "PCI done", "appointment_at": "2026-03-05T01:00:00+00:00"}, "scope": "intra_community",
"reason": "反复胸痛，需心内科评估", "status": "completed", "outcome": "PCI done", "to_tier": "county",
"urgency": "routine", "version": 5, "priority": true, "direction": "up", "from_tier": "village",
"arrived_at": "2026-03-05T01:00:00Z", "created_at": "2026-03-01T02:00:00Z", "updated_at": "2026-03-06T02:00:00Z",
"answer_code": null, "answer_note": null, "resident_id": "ebdcd0f3-9161-4c58-9c22-6fa7a54c67da",
"result_refs": ["pacs://1"], "completed_at": "2026-03-06T02:00:00Z", "escalated_at": null,
"submitted_at": "2026-03-01T02:00:00Z", "appointment_at": "2026-03-05T01:00:00Z", "diagnosis_icd10": "I20.0",
"downward_reason": null, "response_due_at": "2026-03-03T02:00:00Z",
"to_community_id": "dc4c3bbf-ed70-4e00-a3f8-9ddc00d25797", "clinical_summary": "68岁，高血压病史十年。",
"destination_name": null, "discharge_summary": "出院小结：支架一枚", "from_community_id": "dc4c3bbf-ed70-4e00-a3f8-9ddc00d25797",
"grassroots_reason": null, "to_institution_id": "78b80305-e646-4f11-8c76-04af5732b149", "to_department_code": "XNK",
"from_institution_id": "9d2e6e53-ef2f-4aff-a7f2-f70b65dc78e6",
"from_practitioner_id": "5b273a67-a679-4b20-8b38-da8d617d5192", "out_of_county_reason": null,
"replaces_referral_id": null, "resident_community_id": "dc4c3bbf-ed70-4e00-a3f8-9ddc00d25797",
"approver_institution_id": null, "emergency_review_pending": false}, "time": "2026-11-23T13:43:29.332585Z",
"type": "referral.complete", "source": "/referral", "subject": "referral/9a79fbe2-a6d2-4083-bbc1-f507ca7c2745",
"specversion": "1.0", "schemaversion": 1, "datacontenttype": "application/json"}"""

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def stored(text: str) -> EventEnvelope:
    return EventEnvelope.from_bytes(text.encode())


def personal_values(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


# --- upcasting stored version-1 events ---


def test_a_stored_v1_resident_event_decodes_to_v2_without_the_personal_data() -> None:
    event = stored(STORED_RESIDENT_V1)
    assert event.schemaversion == 1 and event.data["name"] == "张珍磊"
    resident = contracts.decode(event)
    assert type(resident) is reg.ResidentV2 is reg.Resident
    assert resident == reg.ResidentV2(
        id=uuid.UUID("307484b3-940f-4a69-b448-0d3bfdc20a08"),
        community_id=uuid.UUID("938e93ae-fc8a-4270-9605-0329398aae12"),
        home_institution_id=uuid.UUID("a06f7493-1468-4b49-bf67-ab39f335e2a2"),
        birth_date=date(1966, 8, 21),
        active=True,
        version=1,
    )
    dumped = personal_values(resident.model_dump(mode="json"))
    for gone in ("张珍磊", "134****5170", "411081********1221", "disabled", "female"):
        assert gone not in dumped


def test_a_stored_v1_contract_event_loses_the_key_populations_and_the_reason() -> None:
    contract = contracts.decode(stored(STORED_CONTRACT_V1))
    assert type(contract) is reg.FamilyDoctorContractV2
    assert contract.status == "terminated" and contract.version == 2
    assert contract.terminated_at == datetime(2026, 6, 1, 8, tzinfo=UTC)
    dumped = personal_values(contract.model_dump(mode="json"))
    assert "severe_mental" not in dumped and "张珍磊" not in dumped


def test_a_stored_v1_practitioner_event_loses_the_name_and_licence() -> None:
    p = contracts.decode(stored(STORED_PRACTITIONER_V1))
    assert type(p) is reg.PractitionerV3
    assert p.title == "attending" and p.general_practitioner and p.postings == []
    assert p.profession == "physician"
    assert "gp1" not in personal_values(p.model_dump(mode="json"))


def test_a_stored_v1_referral_event_keeps_the_workflow_and_drops_the_free_text() -> None:
    r = contracts.decode(stored(STORED_REFERRAL_V1))
    assert type(r) is ref.ReferralV3
    assert (r.status, r.diagnosis_icd10, r.priority, r.version) == ("completed", "I20.0", True, 5)
    assert r.discharge_summary_provided is True
    assert r.event == ref.ReferralStepV2(
        action="complete",
        from_status="arrived",
        role="specialist",
        detail={"appointment_at": "2026-03-05T01:00:00+00:00"},
    )
    dumped = personal_values(r.model_dump(mode="json"))
    for gone in ("胸痛", "高血压", "出院小结", "PCI done", "specialist@hospital1", "pacs://1"):
        assert gone not in dumped


def test_an_unchanged_contract_decodes_its_v1_event_as_it_is() -> None:
    data = {
        "id": str(uuid.uuid4()),
        "code": "C1",
        "name": "医共体1",
        "county_code": "411081",
        "lead_institution_id": None,
        "active": True,
        "version": 3,
    }
    event = EventEnvelope(type="registry.community.updated", source="/registry", subject="c", data=data)
    assert contracts.decode(event).model_dump(mode="json") == data


# --- what cannot be read fails clearly (and is bad data, not a fault) ---


def bad(event: EventEnvelope) -> contracts.ContractError:
    with pytest.raises(contracts.ContractError) as info:
        contracts.decode(event)
    assert isinstance(info.value, ValueError) and not is_transient(info.value)
    return info.value


def test_a_future_version_is_refused_with_a_clear_error() -> None:
    event = stored(STORED_RESIDENT_V1).model_copy(update={"schemaversion": 3})
    error = bad(event)
    assert isinstance(error, contracts.UnsupportedVersion)
    assert "schemaversion 3" in str(error) and "registry.residents" in str(error)
    assert isinstance(bad(event.model_copy(update={"schemaversion": 0})), contracts.UnsupportedVersion)


def test_malformed_data_is_refused_with_a_clear_error() -> None:
    event = stored(STORED_RESIDENT_V1)
    missing = {k: v for k, v in event.data.items() if k != "birth_date"}
    error = bad(event.model_copy(update={"data": missing}))
    assert isinstance(error, contracts.MalformedEvent) and "birth_date" in str(error)
    # a v2 event carrying a name (a producer that kept it without a new version) is not v2
    v2 = contracts.decode(event).model_dump(mode="json") | {"name": "张珍磊"}
    error = bad(event.model_copy(update={"data": v2, "schemaversion": 2}))
    assert isinstance(error, contracts.MalformedEvent) and "name" in str(error)
    wrong_type = {**event.data, "birth_date": "not a date"}
    assert isinstance(bad(event.model_copy(update={"data": wrong_type})), contracts.MalformedEvent)


def test_an_unknown_event_type_is_refused() -> None:
    error = bad(stored(STORED_RESIDENT_V1).model_copy(update={"type": "registry.resident.merged"}))
    assert isinstance(error, contracts.UnknownEventType) and "registry.resident.merged" in str(error)


def test_a_producer_cannot_write_an_old_version_or_another_contracts_model() -> None:
    old = contracts.decode(stored(STORED_RESIDENT_V1))
    with pytest.raises(contracts.ContractError):
        contracts.event(
            "registry.resident.created",
            reg.ResidentV1.model_validate(stored(STORED_RESIDENT_V1).data),
            source="/registry",
            subject="x",
            key="x",
        )
    with pytest.raises(contracts.ContractError):
        contracts.event("registry.contract.signed", old, source="/registry", subject="x", key="x")


def test_the_registry_of_contracts_is_consistent() -> None:
    for type_, contract in contracts.REGISTRY.items():
        assert type_.split(".")[0] == contract.topic.split(".")[0]
        assert len(contract.upcasters) == contract.version - 1
        assert all(
            v.model_config.get("frozen") and v.model_config.get("extra") == "forbid"
            for v in contract.versions
        )
    # every step the referral state machine can take, and every status a referral starts in, has a type
    for name in [*Action, Status.SUBMITTED, Status.PENDING_APPROVAL, "escalate", "review", "follow_up_visit"]:
        assert contracts.contract_for(f"referral.{name}") is ref.REFERRALS
    assert contracts.contract_for("referral.follow_up_missed") is ref.REFERRALS


# --- producers: built from rows, validated against the contract ---


def roundtrip(e: Any) -> contracts.EventData:
    """What a consumer reads of an outgoing event, after the outbox and Kafka (JSON both ways)."""
    envelope = EventEnvelope.from_bytes(e.envelope.to_bytes())
    assert envelope.schemaversion == contracts.contract_for(envelope.type).version
    assert e.topic == contracts.contract_for(envelope.type).topic
    return contracts.decode(envelope)


def resident_row() -> m.Resident:
    return m.Resident(
        id=uuid.uuid4(),
        national_id_hash="h",
        national_id_sealed=b"s",
        national_id_masked="411081********1221",
        phone_masked="134****5170",
        name="张珍磊",
        gender="female",
        birth_date=date(1966, 8, 21),
        region_code="411081",
        community_id=uuid.uuid4(),
        home_institution_id=None,
        key_populations=["disabled"],
        active=True,
        version=4,
    )


def test_the_registry_resident_event_is_v2_and_carries_no_name() -> None:
    r = resident_row()
    e = registry_events.resident("updated", r)
    assert (e.topic, e.key, e.envelope.subject) == ("registry.residents", str(r.id), f"resident/{r.id}")
    assert e.envelope.schemaversion == 2 and e.envelope.type == "registry.resident.updated"
    assert set(e.envelope.data) == {
        "id",
        "community_id",
        "home_institution_id",
        "birth_date",
        "active",
        "version",
    }
    assert roundtrip(e) == reg.Resident(
        id=r.id,
        community_id=r.community_id,
        home_institution_id=None,
        birth_date=date(1966, 8, 21),
        active=True,
        version=4,
    )
    # the API still answers with everything (only the topic changed)
    assert ResidentOut.model_validate(r).name == "张珍磊"


def test_registry_events_of_unchanged_contracts_are_what_the_api_models_put_on_the_topic() -> None:
    """Version 1 stays byte-compatible: the event built from the rows equals the old DTO dump."""
    community = m.Community(
        id=uuid.uuid4(),
        code="C1",
        name="医共体",
        county_code="411081",
        lead_institution_id=None,
        active=True,
        version=2,
    )
    inst = m.Institution(
        id=uuid.uuid4(),
        code="H1",
        name="县医院",
        tier="county",
        kind="general",
        region_code="411081",
        community_id=community.id,
        membership="lead",
        insurance_designated=True,
        service_centres=["imaging"],
        active=True,
        version=1,
    )
    depts = [
        m.Department(
            id=uuid.uuid4(), institution_id=inst.id, code="NEI", name="内科", kind="clinical", active=True
        )
    ]
    team = m.Team(
        id=uuid.uuid4(),
        code="T1",
        name="团队",
        community_id=community.id,
        institution_id=inst.id,
        lead_practitioner_id=uuid.uuid4(),
        active=True,
        version=1,
    )
    members = [m.TeamMember(team_id=team.id, practitioner_id=team.lead_practitioner_id, role="lead")]
    entry = m.CatalogueEntry(
        id=uuid.uuid4(),
        county_code="411081",
        catalogue="grassroots",
        tier="village",
        icd10="I10",
        name="高血压",
        active=True,
        version=1,
    )
    institution_out = InstitutionOut.model_validate(inst)
    institution_out.departments = [DepartmentOut.model_validate(d) for d in depts]
    team_out = TeamOut.model_validate(team)
    team_out.members = [TeamMemberOut.model_validate(x) for x in members]
    pairs = [
        (registry_events.community("created", community), CommunityOut.model_validate(community)),
        (registry_events.institution("created", inst, depts), institution_out),
        (registry_events.team("created", team, members), team_out),
        (registry_events.catalogue_entry("added", entry), CatalogueEntryOut.model_validate(entry)),
    ]
    for event, dto in pairs:
        assert event.envelope.schemaversion == 1
        assert event.envelope.data == dto.model_dump(mode="json")
        roundtrip(event)


def test_the_registry_contract_event_is_v2_and_the_demo_rows_build_it_too() -> None:
    row = {
        "id": uuid.uuid4(),
        "resident_id": uuid.uuid4(),
        "team_id": uuid.uuid4(),
        "community_id": uuid.uuid4(),
        "start_date": date(2026, 1, 1),
        "end_date": date(2026, 12, 31),
        "status": "active",
        "key_populations": ["elderly"],
        "previous_contract_id": None,
        "terminated_at": None,
        "termination_reason": None,
        "version": 1,
    }
    e = registry_events.contract("signed", SimpleNamespace(**row))
    old = ContractOut.model_validate(row).model_dump(mode="json")
    assert e.envelope.data == {
        k: v for k, v in old.items() if k not in {"key_populations", "termination_reason"}
    }
    assert type(roundtrip(e)) is reg.FamilyDoctorContract
    assert (
        "name"
        not in registry_events.outbox_row(registry_events.resident("created", resident_row()))["payload"][
            "data"
        ]
    )


def referral_row() -> rm.Referral:
    return rm.Referral(
        id=uuid.uuid4(),
        direction="up",
        scope="intra_community",
        status="accepted",
        urgency="routine",
        priority=True,
        resident_id=uuid.uuid4(),
        resident_community_id=uuid.uuid4(),
        from_institution_id=uuid.uuid4(),
        from_tier="village",
        from_community_id=None,
        from_practitioner_id=None,
        to_institution_id=uuid.uuid4(),
        to_tier="county",
        to_community_id=None,
        to_department_code="XNK",
        destination_name=None,
        approver_institution_id=None,
        diagnosis_icd10="I20.0",
        reason="反复胸痛",
        clinical_summary="高血压病史十年",
        result_refs=[],
        grassroots_reason=None,
        out_of_county_reason=None,
        downward_reason=None,
        emergency_review_pending=False,
        replaces_referral_id=None,
        submitted_at=NOW,
        response_due_at=NOW,
        escalated_at=None,
        appointment_at=None,
        arrived_at=None,
        completed_at=None,
        outcome=None,
        discharge_summary=None,
        answer_code=None,
        answer_note="请带既往检查",
        created_at=NOW,
        updated_at=NOW,
        version=2,
    )


def test_the_referral_event_is_v3_without_free_text_or_the_actor() -> None:
    r = referral_row()
    e = referral_events.referral_step(
        r,
        "accept",
        "submitted",
        "referral_coordinator",
        {"note": "请带既往检查", "code": "x", "appointment_at": None},
    )
    assert (e.topic, e.key, e.envelope.type) == ("referral.referrals", str(r.id), "referral.accept")
    assert e.envelope.schemaversion == 3
    data = e.envelope.data
    assert data["event"] == {
        "action": "accept",
        "from_status": "submitted",
        "role": "referral_coordinator",
        "detail": {"code": "x", "appointment_at": None},
    }
    assert data["diagnosis_icd10"] == "I20.0" and data["discharge_summary_provided"] is False
    assert "胸痛" not in personal_values(data) and "既往" not in personal_values(data)
    decoded = roundtrip(e)
    assert isinstance(decoded, ref.Referral) and decoded.status == "accepted"
    with pytest.raises(ValueError, match="free"):
        ref.ReferralStepV2(action="x", from_status=None, role="r", detail={"free": "text"})


def test_referral_events_of_unchanged_contracts_are_what_the_api_models_put_on_the_topic() -> None:
    note = rm.Notification(
        id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        recipient_kind="resident",
        recipient_id=str(uuid.uuid4()),
        message_zh="转诊已提交",
        message_en="Referral submitted",
        created_at=NOW,
    )
    e = referral_events.notification(note)
    assert e.envelope.data == NotificationOut.model_validate(note).model_dump(mode="json")
    roundtrip(e)
    sess = rm.Session(
        id=uuid.uuid4(),
        institution_id=uuid.uuid4(),
        department_code="XNK",
        practitioner_id=None,
        device=None,
        resource_type="clinic",
        starts_at=NOW,
        ends_at=NOW,
        capacity=10,
        family_doctor_share="0.40",
        status="open",
        version=1,
    )
    out = SessionOut.model_validate(sess)
    out.free, out.opens_at = {"public": 6, "family_doctor": 4}, {"public": NOW}
    e = referral_events.session_published(sess, out.free, out.opens_at)
    assert e.envelope.data == out.model_dump(mode="json")
    roundtrip(e)
    booking = rm.Booking(
        id=uuid.uuid4(),
        slot_id=uuid.uuid4(),
        session_id=sess.id,
        resident_id=uuid.uuid4(),
        pool="public",
        channel="resident",
        referral_id=None,
        status="cancelled",
        created_at=NOW,
    )
    plain = referral_events.booking_cancelled(booking)
    assert plain.envelope.data == BookingOut.model_validate(booking).model_dump(mode="json")
    with_session = referral_events.booking_cancelled(booking, None, with_session=True)
    assert with_session.envelope.data == {
        **BookingOut.model_validate(booking).model_dump(mode="json"),
        "reason": "session_cancelled",
        "rebooked_as": None,
        "rebooked_session": None,
        "waitlisted": True,
    }
    assert isinstance(roundtrip(with_session), ref.BookingCancelled)


def test_billing_events_are_what_billing_put_on_its_topics() -> None:
    j = Journal("month_close", "month_close:411081:2030:01", "January")
    community = str(uuid.uuid4())
    j.add("community.cash", -100, community)
    j.add("member.dip", 100, community, str(uuid.uuid4()))
    e = billing_events.journal_posted(j, 7, "411081", 2030, 1, community)
    assert (e.topic, e.key, e.envelope.subject) == ("billing.periods", community, f"billing/{j.key}")
    assert e.envelope.data == {
        "journal_id": 7,
        "kind": "month_close",
        "key": j.key,
        "memo": "January",
        "lines": [
            {
                "account": x.account,
                "amount": x.amount,
                "community_id": x.community_id,
                "institution_id": x.institution_id,
            }
            for x in j.lines
        ],
        "county_code": "411081",
        "year": 2030,
        "month": 1,
    }
    roundtrip(e)
    budget = bm.Budget(
        county_code="411081",
        year=2030,
        community_id=uuid.uuid4(),
        parameter_version=1,
        covered_residents=100,
        amount=1000,
        capitation_pool=400,
        dip_budget=600,
        derivation=[{"label": "contributions", "fen": 1000}],
        created_at=NOW,
    )
    e = billing_events.budget_derived(budget)
    assert e.envelope.data == BudgetOut.model_validate(budget).model_dump(mode="json")
    roundtrip(e)
    dispute = bm.Dispute(
        id=uuid.uuid4(),
        claim_id=uuid.uuid4(),
        community_id=uuid.uuid4(),
        institution_id=uuid.uuid4(),
        status="upheld",
        kind="points",
        charged=100,
        claimed=50,
        decided=50,
        charged_points=Decimal("12.5000"),
        claimed_points=Decimal("6.2500"),
        decided_points=Decimal("6.2500"),
        reason="wrong points",
        decision_note=None,
        opened_at=NOW,
        decided_at=NOW,
        version=2,
    )
    e = billing_events.dispute_decided(dispute, -50)
    assert e.envelope.data == DisputeOut.model_validate(dispute).model_dump(mode="json") | {"delta": -50}
    roundtrip(e)
