"""The platform the fuzzer attacks: the gateway, registry, referral and billing as real processes (the
ones tests/gateway/platform.py starts) on service databases of their own, so thousands of generated
writes never reach the databases, outboxes and topics the rest of the suite counts on; a tiny county
made through the gateway, so generated requests can name real ids; real logins for the commission and a
resident."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from services.billing.events import TOPICS as BILLING_TOPICS
from services.billing.readmodel import CONSUMED_TOPICS as BILLING_CONSUMED
from services.referral.events import TOPICS as REFERRAL_TOPICS
from services.registry.events import TOPICS as REGISTRY_TOPICS

from ..conftest import (
    BILLING_MIGRATIONS,
    PG,
    REFERRAL_MIGRATIONS,
    REGISTRY_MIGRATIONS,
    isolated_name,
    migrated_database,
    recreate_database,
)
from ..gateway.platform import ADMIN_PASSWORD, running_platform, token
from ..integration.county import COUNTY, national_id

RESIDENT_PASSWORD = "fuzz-resident-pass"


@dataclass(frozen=True)
class Platform:
    url: str
    tokens: dict[str, dict[str, str]]  # who → Authorization header
    ids: dict[str, str]  # real ids of the small county


async def _created(c: httpx.AsyncClient, path: str, body: dict[str, Any], admin: dict[str, str]) -> str:
    r = await c.post(path, json=body, headers=admin)
    assert r.status_code == 201, (path, r.text)
    return str(r.json().get("id", ""))


async def _seed(c: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    """A province, the county, one community with its hospital (two departments), one resident and the
    resident's login: enough for ids in paths to exist, small enough to build in a second."""
    reg = "/api/registry/v1"
    await _created(c, f"{reg}/regions", {"code": "410000", "name": "河南省", "level": "province"}, admin)
    region = {"code": COUNTY, "name": "禹州市", "level": "county", "parent_code": "410000"}
    await _created(c, f"{reg}/regions", region, admin)
    ids = {"county_code": COUNTY}
    community = {"code": "FZC1", "name": "模糊测试医共体", "county_code": COUNTY}
    ids["community_id"] = await _created(c, f"{reg}/communities", community, admin)
    hospital = {
        "code": "FZH1",
        "name": "模糊测试县医院",
        "tier": "county",
        "kind": "general",
        "region_code": COUNTY,
        "community_id": ids["community_id"],
        "membership": "lead",
        "departments": [{"code": "NEI", "name": "内科"}, {"code": "CT", "name": "CT室", "kind": "exam"}],
    }
    ids["institution_id"] = await _created(c, f"{reg}/institutions", hospital, admin)
    resident = {
        "national_id": national_id(),
        "name": "模糊居民",
        "community_id": ids["community_id"],
        "home_institution_id": ids["institution_id"],
    }
    ids["resident_id"] = await _created(c, f"{reg}/residents", resident, admin)
    user = {
        "username": "fuzz-resident",
        "password": RESIDENT_PASSWORD,
        "role": "resident",
        "resident_id": ids["resident_id"],
    }
    await _created(c, "/admin/users", user, admin)
    return ids


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_platform() -> AsyncIterator[Platform]:
    """The real processes on fresh `*_fuzz_platform` databases. The gateway's rate limit is lifted (the
    fuzzer is one user sending hundreds of requests a second, and 429s would hide every other answer; the
    limit has its own test in tests/gateway), and access tokens outlive a long `make fuzz`."""
    dbs = {
        "REGISTRY_DB": (REGISTRY_MIGRATIONS, list(REGISTRY_TOPICS.values())),
        "REFERRAL_DB": (REFERRAL_MIGRATIONS, [*REFERRAL_TOPICS, *REGISTRY_TOPICS.values()]),
        "BILLING_DB": (BILLING_MIGRATIONS, [*BILLING_TOPICS, *BILLING_CONSUMED]),
    }
    urls: dict[str, Any] = {}
    for name, (migrations, topics) in dbs.items():
        url = f"{PG}/{isolated_name(name.split('_')[0].lower() + '_fuzz_platform')}"
        urls[name] = await migrated_database(url, migrations, topics)
    await recreate_database(isolated_name("gateway_test"))
    limits = {  # the fuzzer is one user from one address: throttles would hide every other answer
        "RATE_LIMIT_BURST": "1000000",
        "RATE_LIMIT_PER_SECOND": "1000000",
        "LOGIN_ACCOUNT_FAILURES": "1000000",
        "LOGIN_ADDRESS_FAILURES": "1000000",
        "ACCESS_TTL_SECONDS": "86400",
    }
    with running_platform(urls["REGISTRY_DB"], urls["REFERRAL_DB"], urls["BILLING_DB"], **limits) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            admin = await token(c, grant_type="password", username="admin", password=ADMIN_PASSWORD)
            ids = await _seed(c, admin)
            resident = await token(
                c, grant_type="password", username="fuzz-resident", password=RESIDENT_PASSWORD
            )
        yield Platform(url, {"commission_admin": admin, "resident": resident}, ids)
