"""The restore drill (README: Backup and restore): a year of billing posted through the real service,
`scripts/backup.sh billing`, `scripts/restore.sh` into a fresh empty database, a billing app started on
it: the trial balance and every community statement are what they were, to the fen, and so is every row
of every table and every sequence. The ledger's triggers are back and working, the outbox republishes
nothing, and a restore over a database that is not empty is refused unless --force."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from services.billing.app import create_app as create_billing_app
from services.billing.settings import BillingSettings
from shared.clock import FixedClock
from shared.devtokens import DevSigner
from shared.outbox import OutboxRelay

from ..billing.helpers import claim, officer, open_year, parameters, post_claims, run
from ..conftest import BILLING_DB, BILLING_NOW, KAFKA, PG, isolated_name, recreate_database, service_settings
from ..integration.county import COUNTY
from ..referral.world import World

YEAR = 2032  # no other test posts in it
SCRIPTS = Path(__file__).parents[2] / "scripts"
RESTORED_DB = f"{PG}/{isolated_name('billing_restore_drill')}"

Fingerprint = dict[str, tuple[int, str]]


async def script(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def books(c: AsyncClient, w: World) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The trial balance of the year and the statement of every community that has a budget in it."""
    r = await c.get(f"/v1/insurance-years/{COUNTY}/{YEAR}/trial-balance", headers=officer(w))
    assert r.status_code == 200, r.text
    tb: dict[str, Any] = r.json()
    r = await c.get(f"/v1/insurance-years/{COUNTY}/{YEAR}/budgets", headers=officer(w))
    assert r.status_code == 200, r.text
    statements = {}
    for community in sorted(b["community_id"] for b in r.json()):
        r = await c.get(f"/v1/communities/{community}/statement?year={YEAR}", headers=officer(w))
        assert r.status_code == 200, r.text
        statements[community] = r.json()
    return tb, statements


async def fingerprint(url: str) -> Fingerprint:
    """Every table's row count and a digest of its rows in order; every sequence's position."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (
                await conn.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
                )
            ).scalars()
            out: Fingerprint = {}
            for table in list(tables):
                row = (
                    await conn.execute(
                        sa.text(
                            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                            f'FROM public."{table}" t'
                        )
                    )
                ).one()
                out[table] = (int(row[0]), str(row[1]))
            for name, last in await conn.execute(
                sa.text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
            ):
                out[f"sequence {name}"] = (int(last or 0), "")
    finally:
        await engine.dispose()
    return out


def read_backup(directory: Path) -> dict[str, str]:
    """The backup's files, the text ones read."""
    return {
        p.name: p.read_text() if p.suffix != ".dump" else f"{p.stat().st_size} bytes"
        for p in directory.iterdir()
    }


async def post_a_year(c: AsyncClient, w: World) -> None:
    """Budgets, a year of prepayments, claims at every tier, three month closes and the settlement."""
    await open_year(c, w, YEAR, parameters(w, (30, 20)))
    for month in range(1, 13):
        assert (await run(c, w, f"{YEAR}/prepayments/{month}"))["posted"]
    for inst, body in [
        ("hospital1", claim(w, "BR-H1", "hospital1", "resident3", "outpatient", f"{YEAR}-02-03", 100_000)),
        (
            "hospital2",
            claim(
                w,
                "BR-H2",
                "hospital2",
                "resident1",
                "inpatient",
                f"{YEAR}-02-10",
                400_000,
                dip_group="J18-1",
                dip_points="600",
            ),
        ),
        (
            "township1",
            claim(
                w,
                "BR-T1",
                "township1",
                "resident3",
                "inpatient",
                f"{YEAR}-03-04",
                50_000,
                diagnosis_icd10="K29.7",
                dip_group="K29-1",
                dip_points="200",
            ),
        ),
        (
            "township2",
            claim(
                w,
                "BR-T2",
                "township2",
                "resident2",
                "inpatient",
                f"{YEAR}-03-12",
                80_000,
                dip_group="J18-1",
                dip_points="300",
            ),
        ),
        ("village1", claim(w, "BR-V1", "village1", "resident1", "outpatient", f"{YEAR}-03-20", 30_000)),
    ]:
        done = await post_claims(c, w, inst, [body])
        assert done["claims"][0]["insurance_share"] > 0, done
    for month in (1, 2, 3):
        await run(c, w, f"{YEAR}/months/{month}/close")
    scores = {w.ids["community1"]: "85", w.ids["community2"]: "95"}
    assert (await run(c, w, f"{YEAR}/settlement", {"scores": scores}))["posted"]


async def test_billing_restored_into_an_empty_database_keeps_its_books(
    billing_client: AsyncClient, county: World, signer: DevSigner, tmp_path: Path
) -> None:
    c, w = billing_client, county
    await post_a_year(c, w)
    await OutboxRelay(BILLING_DB, KAFKA).drain()  # as a running service's relay would have
    tb, statements = await books(c, w)
    # the books hold something, so an empty restore cannot match them
    assert tb["balanced"] and tb["total_debit"] > 0 and tb["journals"] > 20
    assert len(statements) == 2 and all(s["settlement"] and s["spent"] > 0 for s in statements.values())
    before = await fingerprint(BILLING_DB)
    assert before["journals"][0] > 0 and before["outbox"][0] > 0

    rc, out, err = await script(
        str(SCRIPTS / "backup.sh"),
        "billing",
        env={"BILLING_DATABASE_URL": BILLING_DB, "BACKUP_DIR": str(tmp_path)},
    )
    assert rc == 0, err
    backup = Path(out.strip().splitlines()[-1])
    assert backup.parent == tmp_path
    files = await asyncio.to_thread(read_backup, backup)
    assert sorted(files) == ["MANIFEST", "SHA256SUMS", "billing.dump"]
    assert "billing.dump" in files["SHA256SUMS"] and "MANIFEST" in files["SHA256SUMS"]
    assert f"billing  {BILLING_DB.rsplit('/', 1)[1]}  " in files["MANIFEST"]

    await recreate_database(RESTORED_DB.rsplit("/", 1)[1])  # fresh and empty
    rc, _, err = await script(str(SCRIPTS / "restore.sh"), "--to", RESTORED_DB, "billing", str(backup))
    assert rc == 0, err
    assert "every journal balances" in err

    settings = service_settings(BillingSettings, RESTORED_DB, auth_jwks=json.dumps(signer.jwks()))
    restored = create_billing_app(settings, clock=FixedClock(BILLING_NOW))
    try:
        async with AsyncClient(transport=ASGITransport(app=restored), base_url="http://billing") as rc_client:
            assert await books(rc_client, w) == (tb, statements)
    finally:
        await restored.state.db.dispose()
    assert await fingerprint(RESTORED_DB) == before

    # the outbox kept published_at: the restored service's relay has nothing to publish again
    assert await OutboxRelay(RESTORED_DB, KAFKA).drain() == 0

    # a second restore over the restored (not empty) database is refused and changes nothing...
    rc, _, err = await script(str(SCRIPTS / "restore.sh"), "--to", RESTORED_DB, "billing", str(backup))
    assert rc == 3 and "not empty" in err, err
    assert await fingerprint(RESTORED_DB) == before
    # ...unless forced: the dump's objects are replaced in one transaction, triggers and all
    rc, _, err = await script(
        str(SCRIPTS / "restore.sh"), "--force", "--to", RESTORED_DB, "billing", str(backup / "billing.dump")
    )
    assert rc == 0, err
    assert await fingerprint(RESTORED_DB) == before

    # the ledger's triggers came back (through --force too) and still guard it
    engine = create_async_engine(RESTORED_DB)
    try:
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE journals SET memo = 'edited'"))
        with pytest.raises(DBAPIError, match="does not balance"):
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO ledger_lines (journal_id, account, community_id, institution_id, amount) "
                        "SELECT journal_id, account, community_id, institution_id, amount FROM ledger_lines "
                        "ORDER BY id LIMIT 1"
                    )
                )
    finally:
        await engine.dispose()
