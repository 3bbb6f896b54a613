"""Walks the two-way referral of the referral issue through the running services (`make up`):
a village doctor refers a contracted resident up, the county referral office accepts and schedules,
the patient arrives and is discharged, a downward referral with follow-ups brings them home; then it
prints the timeline and the referral events read back from Kafka."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from shared.devtokens import DevSigner
from shared.events import EventEnvelope

REGISTRY = os.environ.get("REGISTRY_URL", "http://127.0.0.1:8001")
REFERRAL = os.environ.get("REFERRAL_URL", "http://127.0.0.1:8002")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:59092")
signer = DevSigner.load(Path(__file__).parents[1] / ".local" / "auth")


def auth(role: str, institution: str, practitioner: str | None = None) -> dict[str, str]:
    token = signer.mint(
        role, subject=f"{role}@{institution[:8]}", institution_id=institution, practitioner_id=practitioner
    )
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}


def ok(r: httpx.Response) -> dict[str, Any]:
    if r.status_code >= 300:
        sys.exit(f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}")
    body: dict[str, Any] = r.json()
    return body


def main() -> None:
    admin = {"Authorization": "Bearer " + signer.mint("commission_admin", subject="demo-admin")}
    reg = httpx.Client(base_url=REGISTRY, timeout=10, headers=admin)
    ref = httpx.Client(base_url=REFERRAL, timeout=10)
    county = ok(reg.get("/v1/institutions", params={"tier": "county", "kind": "general"}))["items"][0]
    contract = ok(
        reg.get(
            "/v1/contracts", params={"community_id": county["community_id"], "status": "active", "limit": 1}
        )
    )["items"][0]
    team = ok(reg.get(f"/v1/teams/{contract['team_id']}"))
    resident = ok(reg.get(f"/v1/residents/{contract['resident_id']}"))
    village_doctor = next(m for m in team["members"] if m["role"] == "member")["practitioner_id"]
    village = ok(reg.get(f"/v1/practitioners/{village_doctor}"))["institution_id"]
    township = team["institution_id"]
    print(f"resident {resident['name']} ({resident['national_id_masked']}), team {team['name']}")
    body = {
        "direction": "up",
        "resident_id": resident["id"],
        "from_institution_id": village,
        "to_institution_id": county["id"],
        "to_department_code": "XNK",
        "diagnosis_icd10": "I20.0",
        "reason": "反复胸痛一周",
        "urgency": "urgent",
        "clinical_summary": "劳力性胸痛，心电图ST段压低",
        "result_refs": ["ecg:village/2026-11-22"],
    }
    deadline = time.monotonic() + 60
    while True:  # the referral service may still be reading the registry topics after start-up
        r = ref.post("/v1/referrals", json=body, headers=auth("village_doctor", village, village_doctor))
        if r.status_code != 422 or time.monotonic() > deadline:
            break
        time.sleep(1)
    up = ok(r)
    print(
        f"1. upward referral {up['id']} submitted, priority={up['priority']}, answer due {up['response_due_at']}"
    )
    office = auth("referral_coordinator", county["id"])

    def step(x: dict[str, Any], action: str, **body: Any) -> dict[str, Any]:
        return ok(
            ref.post(
                f"/v1/referrals/{x['id']}/{action}",
                json={"version": x["version"], **body},
                headers={**office, "Idempotency-Key": str(uuid.uuid4())},
            )
        )

    up = step(up, "accept", note="心内科接收")
    up = step(up, "schedule", appointment_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    up = step(up, "arrive")
    up = step(
        up,
        "complete",
        outcome="不稳定型心绞痛，PCI术后",
        discharge_summary="出院小结：术后稳定，下转社区康复随访",
    )
    print(f"2. county office accepted, scheduled; patient arrived and was discharged: {up['status']}")
    specialist = ok(
        reg.get("/v1/practitioners", params={"institution_id": county["id"], "title": "chief", "limit": 1})
    )["items"][0]["id"]
    down = ok(
        ref.post(
            "/v1/referrals",
            headers=auth("specialist", county["id"], specialist),
            json={
                "direction": "down",
                "resident_id": resident["id"],
                "from_institution_id": county["id"],
                "to_institution_id": township,
                "diagnosis_icd10": "I20.0",
                "reason": "PCI术后康复",
                "clinical_summary": "术后第5天，生命体征平稳",
                "downward_reason": "post_operative",
                "follow_up": {"interval_days": 14, "visits": 4},
            },
        )
    )
    gp = auth("family_doctor", township, team["lead_practitioner_id"])
    for action in ("accept", "arrive"):
        down = ok(
            ref.post(
                f"/v1/referrals/{down['id']}/{action}",
                json={"version": down["version"]},
                headers={**gp, "Idempotency-Key": str(uuid.uuid4())},
            )
        )
    visits = ok(ref.get(f"/v1/referrals/{down['id']}/follow-ups", headers=gp))
    ok(ref.post(f"/v1/follow-ups/{visits[0]['id']}/done", json={"note": "血压128/78，无胸痛"}, headers=gp))
    print(
        f"3. downward referral {down['id']} accepted by the township; {len(visits)} follow-ups planned, first done"
    )
    for x in (up, down):
        print(f"\ntimeline of {x['direction']}ward referral {x['id']}:")
        for t in ok(ref.get(f"/v1/referrals/{x['id']}/timeline", headers=office if x is up else gp)):  # type: ignore[arg-type]
            print(
                f"  {t['at']}  {t['action']:<16} {t['from_status'] or '-':>10} → {t['to_status']:<10} by {t['actor']}"
            )
    print(
        f"\nevents on Kafka topic referral.referrals for these referrals: {asyncio.run(read_events({up['id'], down['id']}))}"
    )


async def read_events(ids: set[str]) -> list[str]:
    consumer = AIOKafkaConsumer(
        "referral.referrals",
        bootstrap_servers=KAFKA,
        group_id=f"demo-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[str] = []
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end and len(seen) < 8:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for rec in records:
                    e = EventEnvelope.from_bytes(rec.value or b"{}")
                    if e.subject.split("/")[-1] in ids:
                        seen.append(e.type)
    finally:
        await consumer.stop()
    return seen


if __name__ == "__main__":
    main()
