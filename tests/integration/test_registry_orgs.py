"""Regions, communities, institutions and departments through HTTP on the real database."""

from __future__ import annotations

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from .county import COUNTY, build_county, post


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


async def test_county_builds_and_reads_back(client: AsyncClient) -> None:
    c = await build_county(client)
    r = await client.get(f"/v1/institutions/{c.hospital['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["membership"] == "lead" and {d["code"] for d in body["departments"]} == {"NEI", "CT"}
    r = await client.get("/v1/institutions", params={"community_id": c.community["id"], "tier": "village"})
    assert [i["code"] for i in r.json()["items"]] == ["V1"]
    r = await client.get("/v1/institutions", params={"q": "卫生院"})
    assert r.json()["total"] == 1
    assert (await client.get("/v1/regions", params={"parent_code": "410000"})).json()["items"][0][
        "code"
    ] == COUNTY
    assert (await client.get(f"/v1/regions/{COUNTY}")).json()["name"] == "禹州市"


async def test_community_lead_and_deactivation(client: AsyncClient) -> None:
    c = await build_county(client)
    r = await client.patch(
        f"/v1/communities/{c.community['id']}",
        json={"version": c.community["version"], "lead_institution_id": c.hospital["id"]},
    )
    assert r.status_code == 200 and r.json()["lead_institution_id"] == c.hospital["id"]
    r = await client.patch(
        f"/v1/communities/{c.community['id']}", json={"version": 1, "lead_institution_id": c.township["id"]}
    )
    assert r.status_code == 409  # stale version
    r = await client.patch(
        f"/v1/communities/{c.community['id']}", json={"version": 2, "lead_institution_id": c.township["id"]}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("lead-not-member")
    r = await client.delete(f"/v1/communities/{c.other_community['id']}")
    assert r.status_code == 200 and r.json()["active"] is False
    listed = (await client.get("/v1/communities", params={"county_code": COUNTY, "active": True})).json()
    assert [x["code"] for x in listed["items"]] == ["C1"]
    assert (await client.get(f"/v1/communities/{c.other_community['id']}")).json()["active"] is False


async def test_institution_update_and_version_conflict(client: AsyncClient) -> None:
    c = await build_county(client)
    path = f"/v1/institutions/{c.township['id']}"
    r = await client.patch(path, json={"version": c.township["version"], "insurance_designated": True})
    assert r.status_code == 200 and r.json()["version"] == c.township["version"] + 1
    stale = await client.patch(path, json={"version": c.township["version"], "name": "x"})
    assert stale.status_code == 409 and stale.headers["content-type"] == "application/problem+json"
    assert "刷新" in stale.json()["title"]
    r = await client.post(f"{path}/departments", json={"code": "QK", "name": "全科"})
    assert r.status_code == 201 and [d["code"] for d in r.json()["departments"]] == ["QK"]
    dup = await client.post(f"{path}/departments", json={"code": "QK", "name": "全科"})
    assert dup.status_code == 409
    gone = await client.delete(path)
    assert gone.status_code == 200 and gone.json()["active"] is False


async def test_bad_institutions_write_nothing(client: AsyncClient, registry_engine: AsyncEngine) -> None:
    c = await build_county(client)
    before = await count(registry_engine, "institutions")
    base = {"code": "X1", "name": "某机构", "tier": "county", "kind": "general", "region_code": COUNTY}
    cases = [
        ({**base, "tier": "township", "kind": "village_clinic"}, 422, "tier-type-mismatch"),
        ({**base, "community_id": c.community["id"], "membership": "lead"}, 409, "lead-exists"),
        (
            {**base, "community_id": "00000000-0000-0000-0000-000000000000", "membership": "tight"},
            422,
            "unknown-reference",
        ),
        ({**base, "region_code": "999999"}, 422, "unknown-reference"),
        ({**base, "code": "H1"}, 409, "duplicate-code"),
        ({**base, "tier": "galaxy"}, 422, "validation-error"),
        (
            {**base, "departments": [{"code": "A", "name": "a"}, {"code": "A", "name": "b"}]},
            422,
            "duplicate-department",
        ),
        ({**base, "unknown_field": 1}, 422, "validation-error"),
    ]
    for body, status, slug in cases:
        r = await client.post("/v1/institutions", json=body)
        assert r.status_code == status, (body, r.text)
        problem = r.json()
        assert problem["type"].endswith(slug) and problem["title_zh"] and problem["title_en"], problem
        assert r.headers["content-type"] == "application/problem+json"
    assert await count(registry_engine, "institutions") == before


async def test_malformed_json_and_unknown_ids(client: AsyncClient) -> None:
    r = await client.post(
        "/v1/institutions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("validation-error")
    r = await client.get("/v1/institutions/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["title_zh"] == "机构不存在"
    r = await client.get("/v1/institutions/not-a-uuid")
    assert r.status_code == 422
    r = await client.get("/v1/no-such-route")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_oversized_page_refused(client: AsyncClient) -> None:
    for params in ({"limit": 201}, {"limit": 0}, {"offset": -1}):
        r = await client.get("/v1/institutions", params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["loc"][0] == "query"


async def test_pagination_walks_all_rows(client: AsyncClient) -> None:
    await build_county(client)
    seen = []
    for offset in range(0, 10, 2):
        page = (await client.get("/v1/institutions", params={"limit": 2, "offset": offset})).json()
        assert page["total"] == 3
        seen += [i["code"] for i in page["items"]]
    assert seen == ["H1", "T1", "V1"]


async def test_changes_write_outbox_events_in_the_same_transaction(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    async with registry_engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT topic, key, payload->>'type' AS type FROM outbox ORDER BY seq")
            )
        ).all()
    types = [r.type for r in rows]
    assert types.count("registry.institution.created") == 3
    assert "registry.team.created" in types and "registry.community.created" in types
    inst = [r for r in rows if r.key == c.hospital["id"]]
    assert inst[0].topic == "registry.institutions"
    # a refused write leaves no event behind
    n = len(rows)
    await client.post(
        "/v1/institutions",
        json={"code": "H1", "name": "x", "tier": "county", "kind": "general", "region_code": COUNTY},
    )
    assert await count(registry_engine, "outbox") == n


async def test_health_and_metrics(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True}
    await client.get("/v1/regions")
    metrics = await client.get("/metrics")
    assert "http_requests_total" in metrics.text or "http_request_duration" in metrics.text
    r = await client.get("/healthz", headers={"X-Request-ID": "3fa85f64-5717-4562-b3fc-2c963f66afa6"})
    assert r.headers["X-Request-ID"] == "3fa85f64-5717-4562-b3fc-2c963f66afa6"


async def test_region_rules(client: AsyncClient) -> None:
    await post(client, "/v1/regions", {"code": "410000", "name": "河南省", "level": "province"})
    r = await client.post("/v1/regions", json={"code": "410000", "name": "again", "level": "province"})
    assert r.status_code == 409
    r = await client.post("/v1/regions", json={"code": "41000", "name": "short", "level": "province"})
    assert r.status_code == 422
    r = await client.post(
        "/v1/regions", json={"code": "411000", "name": "x", "level": "city", "parent_code": "420000"}
    )
    assert r.status_code == 422
