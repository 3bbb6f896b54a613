"""Walks the two-way referral through the gateway of the running platform (`make up`): the commission
creates accounts for a village doctor, the county referral office, a specialist and a township family
doctor, each logs in; the village doctor refers a contracted resident up, the county office accepts and
schedules, the patient arrives and is discharged, a downward referral with follow-ups brings them home;
then it prints the timelines and the referral events read back from Kafka."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from shared.events import EventEnvelope

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "yigongti-admin")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
gw = httpx.Client(base_url=GATEWAY, timeout=10)


def login(username: str, password: str) -> dict[str, str]:
    r = gw.post("/oauth/token", data={"grant_type": "password", "username": username, "password": password})
    return {"Authorization": "Bearer " + ok(r)["access_token"]}


def account(
    admin: dict[str, str], role: str, institution: str, practitioner: str | None = None
) -> dict[str, str]:
    """The commission creates the account once (a second run finds it), then its owner logs in."""
    username = f"demo-{role}-{institution[:8]}"
    body = {
        "username": username,
        "password": f"pw-{username}",
        "role": role,
        "institution_id": institution,
        "community_id": ok(gw.get(f"/api/registry/v1/institutions/{institution}", headers=admin))[
            "community_id"
        ],
        "practitioner_id": practitioner,
    }
    r = gw.post("/admin/users", headers=admin, json=body)
    if r.status_code != 409:
        ok(r)
    return login(username, f"pw-{username}")


def auth(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": str(uuid.uuid4())}


def ok(r: httpx.Response) -> dict[str, Any]:
    if r.status_code >= 300:
        sys.exit(f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}")
    body: dict[str, Any] = r.json()
    return body


def main() -> None:
    admin = login("admin", ADMIN_PASSWORD)
    reg = httpx.Client(base_url=f"{GATEWAY}/api/registry", timeout=10, headers=admin)
    ref = httpx.Client(base_url=f"{GATEWAY}/api/referral", timeout=10)
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
    doctor = account(admin, "village_doctor", village, village_doctor)
    deadline = time.monotonic() + 60
    while True:  # the referral service may still be reading the registry topics after start-up
        r = ref.post("/v1/referrals", json=body, headers=auth(doctor))
        if r.status_code != 422 or time.monotonic() > deadline:
            break
        time.sleep(1)
    up = ok(r)
    print(
        f"1. upward referral {up['id']} submitted, priority={up['priority']}, answer due {up['response_due_at']}"
    )
    office = account(admin, "referral_coordinator", county["id"])

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
            headers=auth(account(admin, "specialist", county["id"], specialist)),
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
    gp = account(admin, "family_doctor", township, team["lead_practitioner_id"])
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
