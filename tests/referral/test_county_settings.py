"""The county's referral rules as the commission sees them: the defaults, a change with its reason,
the history, and what is refused (someone else, a nonsense value, an unknown county)."""

from __future__ import annotations

from httpx import AsyncClient

from ..integration.county import COUNTY
from .world import World

URL = f"/v1/counties/{COUNTY}/referral-settings"


async def test_the_commission_changes_a_rule_and_the_history_keeps_who_and_why(
    referral_client: AsyncClient, world: World
) -> None:
    c, commission = referral_client, world.token("commission_admin")
    before = (await c.get(URL, headers=world.token("referral_coordinator", "hospital1"))).json()
    assert before["version"] == 0 and before["settings"]["hold_minutes"] == 10
    assert before["settings"]["family_doctor_share"] == "0.40"
    body = {"changes": {"hold_minutes": 20, "priority_share": "0.15"}, "reason": "县卫健委 2026 第 3 号文"}
    headers = {**commission, "Idempotency-Key": "settings-1"}
    r = await c.put(URL, json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert r.json()["changed"] == {"hold_minutes": 20, "priority_share": "0.15"}
    assert r.json()["settings"]["release_before_hours"] == 24  # untouched settings stay
    again = await c.put(URL, json=body, headers=headers)  # a retry: the same answer, no second version
    assert again.json()["version"] == 1 and again.headers.get("Idempotent-Replayed") == "true"
    r = await c.put(URL, json={"changes": {"hold_minutes": 15}, "reason": "试行"}, headers=commission)
    assert r.json()["version"] == 2 and r.json()["settings"]["priority_share"] == "0.15"
    history = (await c.get(f"{URL}/history", headers=commission)).json()
    assert [(h["version"], h["changed"], h["reason"]) for h in history] == [
        (2, {"hold_minutes": 15}, "试行"),
        (1, {"hold_minutes": 20, "priority_share": "0.15"}, "县卫健委 2026 第 3 号文"),
    ]
    assert history[0]["changed_by"] == history[1]["changed_by"] != ""


async def test_only_the_commission_changes_rules_and_nonsense_is_refused(
    referral_client: AsyncClient, world: World
) -> None:
    c, commission = referral_client, world.token("commission_admin")
    body = {"changes": {"hold_minutes": 20}, "reason": "x"}
    r = await c.put(URL, json=body, headers=world.token("referral_coordinator", "hospital1"))
    assert r.status_code == 403 and r.json()["type"].endswith("/commission-only")
    for changes, code in [
        ({"family_doctor_share": "0.30"}, "share-below-floor"),  # 004 §十: never below 40 %
        ({"hold_minutes": 0}, "bad-setting"),
        ({"hold_minutes": "20"}, "bad-setting"),
        ({"urgent_response_hours": 72}, "bad-setting"),  # urgent slower than routine (48 h)
        ({"sweep_everything": True}, "unknown-setting"),
    ]:
        r = await c.put(URL, json={"changes": changes, "reason": "x"}, headers=commission)
        assert r.status_code == 422, (changes, r.text)
        problem = r.json()
        assert problem["type"].endswith(f"/{code}") and problem["title_zh"] and problem["title_en"], problem
    assert (await c.get(URL, headers=commission)).json()["version"] == 0  # nothing half-written
    r = await c.put(URL, json={"changes": {}, "reason": "x"}, headers=commission)
    assert r.status_code == 422
    assert (await c.get("/v1/counties/990000/referral-settings", headers=commission)).status_code == 404
    assert (await c.get("/v1/counties/abc/referral-settings", headers=commission)).status_code == 422
