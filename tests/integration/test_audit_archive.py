"""Archiving the gateway's audit log on the real PostgreSQL: the command writes the rows before the cutoff to
a gzip JSON-lines file whose SHA-256 `sha256sum -c` accepts, deletes exactly those rows and no other, and
refuses a cutoff less than six months ago, an existing file, or an archive that does not match the table.

A gateway database of its own, built by the gateway's migrations."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from services.gateway.archive import (
    ZONE,
    ArchiveRefused,
    archive_audit,
    cutoff_instant,
    latest_cutoff,
    months_before,
    verify_archive,
    write_archive,
)
from shared.db import Database

from ..conftest import PG, TEST_KEY_SECRET, counts_by, isolated_name, migrated_database

ROOT = Path(__file__).parents[2]
ARCHIVE_DB = f"{PG}/{isolated_name('gateway_archive_test')}"
GATEWAY_MIGRATIONS = ROOT / "services" / "gateway" / "migrations"
TODAY = datetime.now(ZONE).date()  # the day in Asia/Shanghai, as the command counts


@pytest_asyncio.fixture(scope="module")
async def module_db() -> AsyncIterator[Database]:
    await migrated_database(ARCHIVE_DB, GATEWAY_MIGRATIONS, [])
    database = Database(ARCHIVE_DB)
    yield database
    await database.dispose()


@pytest_asyncio.fixture
async def db(module_db: Database) -> Database:
    async with module_db.engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE audit_log"))
    return module_db


async def add_rows(db: Database, subject: str, n: int, days_ago: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, subject, role, institution_id, method, path, status, request_id)"
                " SELECT now() - make_interval(days => :days) + make_interval(secs => g), :subject,"
                " 'family_doctor', CASE WHEN g % 2 = 0 THEN gen_random_uuid() END, 'GET',"
                " '/api/registry/v1/residents/' || g || '/identity', 200, 'req-' || g"
                " FROM generate_series(1, :n) g"
            ),
            {"days": days_ago, "subject": subject, "n": n},
        )


async def rows_left(db: Database) -> list[tuple[str, int]]:
    return await counts_by(db.engine, "audit_log", "subject")


async def all_rows(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(sa.text("SELECT * FROM audit_log ORDER BY id"))]


def read_archive(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(text) for text in f]


async def test_old_rows_are_archived_verifiably_then_deleted_and_only_they(
    db: Database, tmp_path: Path
) -> None:
    await add_rows(db, "user:a-two-years", 7, days_ago=730)
    await add_rows(db, "user:b-400-days", 5, days_ago=400)
    await add_rows(db, "user:c-300-days", 4, days_ago=300)
    await add_rows(db, "user:d-today", 2, days_ago=0)
    before_rows = await all_rows(db)
    before = TODAY - timedelta(days=365)
    target = tmp_path / "audit-before.jsonl.gz"

    result = await archive_audit(db, before, target, batch=5)  # 12 rows: three delete batches

    assert (result.rows, result.deleted, result.path) == (12, 12, target)
    assert await rows_left(db) == [("user:c-300-days", 4), ("user:d-today", 2)]
    # the file: every archived row as it was in the table, in id order, and nothing else
    archived = read_archive(target)
    old = [r for r in before_rows if r["subject"] in ("user:a-two-years", "user:b-400-days")]
    assert [r["id"] for r in archived] == [r["id"] for r in old]
    for line, row in zip(archived, old, strict=True):
        assert line == {
            "id": row["id"],
            "at": row["at"].astimezone(UTC).isoformat(),
            "subject": row["subject"],
            "role": row["role"],
            "institution_id": None if row["institution_id"] is None else str(row["institution_id"]),
            "method": row["method"],
            "path": row["path"],
            "status": row["status"],
            "request_id": row["request_id"],
        }
    # the checksum file is sha256sum's own format, and the tool accepts it
    sidecar = target.with_name(target.name + ".sha256")
    assert sidecar.read_text() == f"{result.sha256}  {target.name}\n"
    check = await asyncio.to_thread(
        subprocess.run, ["sha256sum", "-c", sidecar.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0 and "OK" in check.stdout
    assert oct(target.stat().st_mode & 0o777) == "0o600"  # personal-data access records
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]

    # run again: nothing left before the cutoff, nothing written; an existing file is never overwritten
    again = await archive_audit(db, before, tmp_path / "second.jsonl.gz")
    assert again.rows == 0 and again.path is None and not (tmp_path / "second.jsonl.gz").exists()
    await add_rows(db, "user:e-late-arrival", 1, days_ago=500)
    with pytest.raises(ArchiveRefused, match="never overwritten"):
        await archive_audit(db, before, target)
    assert ("user:e-late-arrival", 1) in await rows_left(db)


async def test_a_recent_cutoff_is_refused_and_nothing_changes(db: Database, tmp_path: Path) -> None:
    await add_rows(db, "user:old", 3, days_ago=400)
    await add_rows(db, "user:recent", 3, days_ago=100)
    for days in (0, 30, 179):
        with pytest.raises(ArchiveRefused, match="six months"):
            await archive_audit(db, TODAY - timedelta(days=days), tmp_path / f"a{days}.jsonl.gz")
    assert await rows_left(db) == [("user:old", 3), ("user:recent", 3)]
    assert os.listdir(tmp_path) == []


def test_the_cutoff_is_six_calendar_months_and_never_under_180_days() -> None:
    assert months_before(date(2026, 8, 31), 6) == date(2026, 2, 28)
    assert months_before(date(2026, 3, 15), 6) == date(2025, 9, 15)
    assert latest_cutoff(date(2026, 8, 31)) == date(2026, 2, 28)  # 184 days back: six months is longer
    assert latest_cutoff(date(2026, 9, 1)) == date(2026, 3, 1)  # 184 days
    for today in (date(2026, 8, 31), date(2027, 3, 1), date(2028, 3, 1), date(2026, 12, 31)):
        limit = latest_cutoff(today)
        assert (today - limit).days >= 180 and months_before(today, 6) >= limit
        cutoff_instant(limit, today)  # allowed
        with pytest.raises(ArchiveRefused):
            cutoff_instant(limit + timedelta(days=1), today)
    # the cutoff is midnight in Asia/Shanghai (UTC+8), the day people count in
    assert cutoff_instant(date(2025, 1, 1), date(2026, 1, 1)) == datetime(2024, 12, 31, 16, 0, tzinfo=UTC)


async def test_an_archive_that_does_not_match_the_table_is_refused(db: Database, tmp_path: Path) -> None:
    """Verification reads the file back and compares it with the table line by line: a changed, missing or
    truncated line stops the run before anything is deleted."""
    await add_rows(db, "user:old", 4, days_ago=400)
    cutoff = cutoff_instant(TODAY - timedelta(days=365), TODAY)
    async with db.engine.connect() as conn:
        last_id = (await conn.execute(sa.text("SELECT max(id) FROM audit_log"))).scalar_one()
    good = tmp_path / "good.jsonl.gz"
    assert await write_archive(db, cutoff, last_id, good) == 4
    assert await verify_archive(db, good, cutoff, last_id) == 4
    lines = gzip.decompress(good.read_bytes()).splitlines(keepends=True)
    tampered = {
        "changed": [lines[0], lines[1].replace(b"user:old", b"user:new"), *lines[2:]],
        "missing": lines[:3],
        "extra": [*lines, lines[-1]],
    }
    for name, content in tampered.items():
        path = tmp_path / f"{name}.jsonl.gz"
        path.write_bytes(gzip.compress(b"".join(content)))
        with pytest.raises(ArchiveRefused, match="nothing deleted"):
            await verify_archive(db, path, cutoff, last_id)
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(good.read_bytes()[:-20])  # the gzip trailer cut off
    with pytest.raises(ArchiveRefused, match="cannot be read back"):
        await verify_archive(db, truncated, cutoff, last_id)
    assert await rows_left(db) == [("user:old", 4)]


async def test_the_command_line(db: Database, tmp_path: Path) -> None:
    await add_rows(db, "user:old", 3, days_ago=400)
    await add_rows(db, "user:recent", 2, days_ago=10)
    env = {**os.environ, "DATABASE_URL": ARCHIVE_DB, "KEY_SECRET": TEST_KEY_SECRET, "LOG_JSON": "false"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "services.gateway", "archive-audit", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    refused = run("--before", (TODAY - timedelta(days=30)).isoformat(), "--to", str(tmp_path / "x.gz"))
    assert refused.returncode == 1 and "six months" in refused.stderr
    target = tmp_path / "audit.jsonl.gz"
    done = run("--before", (TODAY - timedelta(days=365)).isoformat(), "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert "3 audit rows" in done.stdout and "3 deleted" in done.stdout
    assert len(read_archive(target)) == 3
    assert await rows_left(db) == [("user:recent", 2)]
