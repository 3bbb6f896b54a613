"""The practitioner contract, version 3 (issue #14 point 6): the profession and every posting's kind, role
and days travel; events stored at version 2 (and 1) upcast to physicians on resident postings; the
referral service's read model still reads it (billing does not consume practitioners)."""

from __future__ import annotations

import uuid
from datetime import date

from services.billing.readmodel import CONSUMED_TOPICS as BILLING_TOPICS
from services.referral.readmodel import MAPPERS as REFERRAL_READ_MODEL
from services.registry import events as registry_events
from services.registry import models as m
from shared import contracts
from shared.contracts import registry as reg
from shared.events import EventEnvelope

# Written by the registry before version 3 (built by the previous code from a chief physician's rows).
STORED_PRACTITIONER_V2 = """{"specversion":"1.0","id":"20c19d6b-98a9-4047-9071-6ba8b76adf1b",
"type":"registry.practitioner.updated","source":"/registry","subject":"practitioner/5f0c1d7e-2b8a-4c39-9d41-7a6e0f3b2c11",
"time":"2026-11-23T17:34:14.042257Z","datacontenttype":"application/json","schemaversion":2,
"data":{"id":"5f0c1d7e-2b8a-4c39-9d41-7a6e0f3b2c11","title":"chief","specialties":["心血管内科"],
"general_practitioner":false,"institution_id":"78b80305-e646-4f11-8c76-04af5732b149",
"postings":[{"id":"0b6f4d2a-93c1-4e57-8a0f-3c2d1e9f7a55","practitioner_id":"5f0c1d7e-2b8a-4c39-9d41-7a6e0f3b2c11",
"host_institution_id":"9d2e6e53-ef2f-4aff-a7f2-f70b65dc78e6","start_date":"2026-03-01","end_date":"2026-09-01"}],
"active":true,"version":3}}"""


def test_a_stored_v2_practitioner_event_is_a_physician_on_a_resident_posting() -> None:
    p = contracts.decode(EventEnvelope.from_bytes(STORED_PRACTITIONER_V2.encode()))
    assert type(p) is reg.PractitionerV3 is reg.Practitioner
    assert (p.profession, p.title, p.version) == ("physician", "chief", 3)
    [posting] = p.postings
    assert (posting.kind, posting.role, posting.weekdays) == ("resident", "physician", [])
    assert (posting.start_date, posting.end_date) == (date(2026, 3, 1), date(2026, 9, 1))


def test_a_nurses_rotating_posting_is_on_the_v3_event_and_the_referral_read_model_takes_it() -> None:
    nurse = m.Practitioner(
        id=uuid.uuid4(),
        licence_no="N1",
        name="刘护士长",
        profession="nurse",
        title="nurse_in_charge",
        specialties=[],
        general_practitioner=False,
        institution_id=uuid.uuid4(),
        active=True,
        version=2,
    )
    posting = m.Posting(
        id=uuid.uuid4(),
        practitioner_id=nurse.id,
        host_institution_id=uuid.uuid4(),
        kind="rotating",
        role="infection_control",
        start_date=date(2026, 3, 3),
        end_date=date(2026, 6, 30),
        weekdays=["tue", "thu"],
    )
    e = registry_events.practitioner("updated", nurse, [posting])
    assert e.envelope.schemaversion == 3 and e.topic == reg.PRACTITIONERS.topic
    assert "name" not in e.envelope.data and "licence_no" not in e.envelope.data
    data = contracts.decode(EventEnvelope.from_bytes(e.envelope.to_bytes()))
    assert isinstance(data, reg.Practitioner) and data.profession == "nurse"
    assert [(x.kind, x.role, x.weekdays) for x in data.postings] == [
        ("rotating", "infection_control", ["tue", "thu"])
    ]
    _, mapper = REFERRAL_READ_MODEL[reg.Practitioner]
    assert mapper(data) == {"institution_id": nurse.institution_id, "title": "nurse_in_charge", "profession": "nurse"}
    assert reg.PRACTITIONERS.topic not in BILLING_TOPICS
