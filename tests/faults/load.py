"""The load: clients that behave like the county's — each chain registers a resident and signs them with a
family-doctor team (registry), the village doctor refers them up, the county referral office accepts and
books a specialist slot for the referral (referral), and the hospital's HIS posts the claim (billing), all
through the gateway.

A client retries a write with the same Idempotency-Key after a transport error, a 5xx or a 429, and
after a 422 that only says a service has not yet heard of the resident (its event is on the way), until
`WRITE_DEADLINE` seconds have passed; every attempt and its outcome is kept, so the checks afterwards
can say which acknowledged write is missing or doubled."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from services.registry.domain.national_id import make_national_id
from shared.clock import SHANGHAI

from .platform import ADMIN_PASSWORD

WRITE_DEADLINE = 120.0
RETRY_STATUSES = {429, 500, 502, 503, 504}
# 400 places each (an urgent referral may take every pool): room for every chain of a long run, so a full
# session never stands in for a fault
SESSIONS = 30
COUNTY = "411081"


@dataclass
class Write:
    kind: str  # resident | contract | referral | accept | booking | claim
    phase: str
    key: str
    started: float
    finished: float = 0.0
    attempts: int = 0
    status: int = 0  # the last answer's status (0: no answer at all)
    entity: str = ""  # the id a 2xx named
    detail: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    ref: str = ""  # the natural key a duplicate would share (a name, a resident, a claim number)

    @property
    def acked(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Cast:
    """Who does what, found in the demo county and created through the gateway's admin API."""

    community: str
    county_hospital: str
    village: str
    team: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    sessions: list[str] = field(default_factory=list)


class Load:
    def __init__(self, gateway: str, workers: int = 4) -> None:
        self.client = httpx.AsyncClient(base_url=gateway, timeout=15)
        self.workers = workers
        self.phase = "setup"
        self.writes: list[Write] = []
        self.chains = 0
        self._stop = asyncio.Event()
        self.cast: Cast | None = None

    async def close(self) -> None:
        await self.client.aclose()

    # --- one write, as a careful client makes it ----------------------------------------------------
    async def write(
        self,
        kind: str,
        path: str,
        body: dict[str, Any] | None,
        who: str,
        *,
        ref: str = "",
        unknown_ok: bool = False,
    ) -> Write:
        assert self.cast is not None
        w = Write(kind, self.phase, str(uuid.uuid4()), time.monotonic(), ref=ref)
        self.writes.append(w)
        headers = {**self.cast.headers[who], "Idempotency-Key": w.key}
        delay = 0.2
        while True:
            w.attempts += 1
            try:
                r = await self.client.post(path, json=body, headers=headers)
                w.status, w.detail = r.status_code, r.text[:300]
            except httpx.TransportError as exc:
                w.status, w.detail = 0, repr(exc)[:300]
            retry = w.status == 0 or w.status in RETRY_STATUSES
            retry |= unknown_ok and w.status == 422 and "nknown" in w.detail
            if not retry or time.monotonic() - w.started > WRITE_DEADLINE:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        w.finished = time.monotonic()
        if w.acked:
            w.body = r.json()
            w.entity = str(w.body.get("id"))
        return w

    # --- the cast ------------------------------------------------------------------------------------
    async def token(self, **form: str) -> dict[str, str]:
        r = await self.client.post("/oauth/token", data=form)
        r.raise_for_status()
        return {"Authorization": "Bearer " + r.json()["access_token"]}

    async def get(self, who: dict[str, str], path: str, **params: Any) -> Any:
        r = await self.client.get(path, headers=who, params=params)
        r.raise_for_status()
        return r.json()

    async def admin_post(self, admin: dict[str, str], path: str, body: dict[str, Any]) -> None:
        r = await self.client.post(path, headers=admin, json=body)
        assert r.status_code in (201, 409), r.text

    async def prepare(self, year: int) -> None:
        admin = await self.token(grant_type="password", username="admin", password=ADMIN_PASSWORD)
        reg = "/api/registry/v1"
        county = (await self.get(admin, f"{reg}/institutions", tier="county", kind="general"))["items"][0]
        contract = (
            await self.get(
                admin, f"{reg}/contracts", community_id=county["community_id"], status="active", limit=1
            )
        )["items"][0]
        team = await self.get(admin, f"{reg}/teams/{contract['team_id']}")
        village_doctor = next(m for m in team["members"] if m["role"] == "member")["practitioner_id"]
        village = (await self.get(admin, f"{reg}/practitioners/{village_doctor}"))["institution_id"]
        cast = Cast(county["community_id"], county["id"], village, team["id"], {"admin": admin})
        users = {
            "doctor": {
                "role": "village_doctor",
                "institution_id": village,
                "practitioner_id": village_doctor,
            },
            "office": {"role": "referral_coordinator", "institution_id": county["id"]},
            "officer": {"role": "insurance_officer"},
        }
        for name, user in users.items():
            body = {"username": f"fault-{name}", "password": f"pw-fault-{name}", **user}
            if "institution_id" in user:
                body["community_id"] = county["community_id"]
            await self.admin_post(admin, "/admin/users", body)
            cast.headers[name] = await self.token(
                grant_type="password", username=f"fault-{name}", password=f"pw-fault-{name}"
            )
        his = {"client_id": "fault-his", "client_secret": "fault-his-secret-2026"}
        await self.admin_post(
            admin,
            "/admin/clients",
            {**his, "institution_id": county["id"], "community_id": county["community_id"]},
        )
        cast.headers["his"] = await self.token(grant_type="client_credentials", **his)
        self.cast = cast
        await self._insurance_year(year)
        # all inside the booking window (it opens a few days ahead): a half-hour apart, two days from now
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        for n in range(SESSIONS):
            w = await self.write(
                "session",
                "/api/referral/v1/sessions",
                {
                    "institution_id": county["id"],
                    "department_code": "XNK",
                    "resource_type": "specialist",
                    "starts_at": (start + timedelta(minutes=30 * n)).isoformat(),
                    "ends_at": (start + timedelta(minutes=30 * n + 30)).isoformat(),
                    "capacity": 400,
                },
                "his",
                unknown_ok=True,  # the referral service may still be reading the demo county
            )
            assert w.acked, w.detail
            cast.sessions.append(str(w.entity))

    async def _insurance_year(self, year: int) -> None:
        assert self.cast is not None
        officer = self.cast.headers["officer"]
        admin = self.cast.headers["admin"]
        communities = (await self.get(admin, "/api/registry/v1/communities"))["items"]
        base = f"/api/billing/v1/insurance-years/{COUNTY}/{year}"
        tier = {"ratio": "0.85", "deductible": 20_000}
        params = {
            "individual_contribution": 38_000,
            "fiscal_subsidy": 64_000,
            "catastrophic_rate": "0.08",
            "tiers": {
                "village": tier,
                "community": tier,
                "township": tier,
                "county": {"ratio": "0.70", "deductible": 60_000},
            },
            "unreferred_county_ratio": "0.55",
            "dip_budget_rate": "0.40",
            "dip_estimated_point_value": "95",
            "communities": [
                {"community_id": c["id"], "covered_residents": 9_000}
                for c in communities
                if c["county_code"] == COUNTY
            ],
        }
        deadline = time.monotonic() + 120
        while True:  # billing learns the communities from the registry's events
            r = await self.client.post(f"{base}/parameters", headers=officer, json=params)
            if r.status_code in (201, 409) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert r.status_code in (201, 409), r.text
        r = await self.client.post(f"{base}/budgets", headers=officer)
        assert r.status_code in (200, 201), r.text

    # --- the chains ----------------------------------------------------------------------------------
    async def chain(self, n: int) -> None:
        cast = self.cast
        assert cast is not None
        birth = date(1931, 1, 1) + timedelta(days=n // 997)
        name = f"负载{n}"
        resident = await self.write(
            "resident",
            "/api/registry/v1/residents",
            {
                "national_id": make_national_id(COUNTY, birth, n % 997 + 1),
                "name": name,
                "phone": f"139{n:08d}",
                "community_id": cast.community,
                "home_institution_id": cast.village,
            },
            "admin",
            ref=name,
        )
        if not resident.acked:
            return
        rid = resident.entity
        contract = await self.write(
            "contract",
            "/api/registry/v1/contracts",
            {"resident_id": rid, "team_id": cast.team},
            "admin",
            ref=rid,
        )
        if not contract.acked:
            return
        referral = await self.write(
            "referral",
            "/api/referral/v1/referrals",
            {
                "direction": "up",
                "resident_id": rid,
                "from_institution_id": cast.village,
                "to_institution_id": cast.county_hospital,
                "to_department_code": "XNK",
                "diagnosis_icd10": "I20.0",
                "reason": "反复胸痛一周",
                "urgency": "urgent",
                "clinical_summary": f"负载链 {n}",
            },
            "doctor",
            ref=rid,
            unknown_ok=True,
        )
        if not referral.acked:
            return
        ref_id = referral.entity
        accepted = await self.write(
            "accept",
            f"/api/referral/v1/referrals/{ref_id}/accept",
            {"version": referral.body["version"], "note": "接收"},
            "office",
            ref=rid,
        )
        if not accepted.acked:
            return
        await self.write(
            "booking",
            "/api/referral/v1/bookings",
            {"session_id": cast.sessions[n % len(cast.sessions)], "resident_id": rid, "referral_id": ref_id},
            "office",
            ref=rid,
        )
        today = datetime.now(SHANGHAI).date()
        await self.write(
            "claim",
            "/api/billing/v1/claims",
            {
                "claim_no": f"FAULT-{n}",
                "institution_id": cast.county_hospital,
                "resident_id": rid,
                "kind": "outpatient",
                "service_date": today.isoformat(),
                "diagnosis_icd10": "I20.0",
                "total_cost": 52_000 + n,
                "eligible_cost": 50_000 + n,
                "referral_id": ref_id,
            },
            "his",
            ref=f"FAULT-{n}",
            unknown_ok=True,
        )

    async def _worker(self) -> None:
        while not self._stop.is_set():
            self.chains += 1
            await self.chain(self.chains)

    async def run(self) -> None:
        """Run chains on `workers` clients until `stop()`; the chains under way finish."""
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    def stop(self) -> None:
        self._stop.set()
