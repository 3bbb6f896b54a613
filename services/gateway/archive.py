"""Archiving the personal-data audit log: kept in the database at least six months, then moved to a file.

The Cybersecurity Law (网络安全法, Art. 21) requires network logs to be kept for no less than six months. So
`python -m services.gateway archive-audit --before YYYY-MM-DD --to FILE` refuses a cutoff less than six
calendar months (and never less than 180 days) before today, in Asia/Shanghai, where the dates people count
are. Rows before the cutoff (00:00 Asia/Shanghai of that day) are never dropped silently; they are:

1. written, in id order, to `FILE.partial`: gzip-compressed JSON lines, one row per line (`id`, `at` in
   UTC ISO 8601, `subject`, `role`, `institution_id`, `method`, `path`, `status`, `request_id`), mode 600;
2. verified: the file is read back to its end (gzip's CRC) and compared line by line with the rows read
   again from the database; any difference stops here, with nothing deleted;
3. renamed to FILE, with its SHA-256 in `FILE.sha256` in `sha256sum` format (`sha256sum -c FILE.sha256`),
   both synced to disk; the checksum is computed again from FILE as it lies there;
4. only then deleted from `audit_log`, in batches of ids taken from the verified file (each batch its own
   short transaction, and only rows still before the cutoff), so a row that is not in the file is never
   deleted.

A run stopped during step 4 leaves rows that are already archived; a second run with a new file archives
what is left. An existing FILE is never overwritten.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from shared.db import Database

from . import models as m

ZONE = ZoneInfo("Asia/Shanghai")
MIN_MONTHS = 6
MIN_DAYS = 180
PAGE = 5_000
BATCH = 1_000
AUDIT: sa.Table = m.AuditEntry.__table__  # type: ignore[assignment]


class ArchiveRefused(Exception):
    """The archive was not made (cutoff too recent, file exists, verification failed); nothing deleted."""


@dataclass(frozen=True)
class ArchiveResult:
    before: date
    rows: int
    deleted: int
    path: Path | None
    sha256: str | None

    def report(self) -> str:
        if self.path is None:
            return f"no audit rows before {self.before} (Asia/Shanghai); nothing archived"
        return (
            f"{self.rows} audit rows before {self.before} (Asia/Shanghai) archived to {self.path} "
            f"(sha256 {self.sha256}, in {checksum_path(self.path)}); {self.deleted} deleted from audit_log"
        )


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day when it has no such day)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def latest_cutoff(today: date) -> date:
    """The most recent `--before` allowed: six calendar months, and at least 180 days, before today."""
    return min(months_before(today, MIN_MONTHS), today - timedelta(days=MIN_DAYS))


def cutoff_instant(before: date, today: date) -> datetime:
    if before > latest_cutoff(today):
        raise ArchiveRefused(
            f"--before {before} is too recent: the audit log is kept at least six months (Cybersecurity "
            f"Law Art. 21); the latest cutoff allowed today ({today}) is {latest_cutoff(today)}"
        )
    return datetime.combine(before, time(0), ZONE)


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def line(row: Any) -> bytes:
    record = {
        "id": row.id,
        "at": row.at.astimezone(UTC).isoformat(),
        "subject": row.subject,
        "role": row.role,
        "institution_id": None if row.institution_id is None else str(row.institution_id),
        "method": row.method,
        "path": row.path,
        "status": row.status,
        "request_id": row.request_id,
    }
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


async def archived_rows(db: Database, cutoff: datetime, last_id: int, page: int = PAGE) -> AsyncIterator[Any]:
    """The rows to archive, in id order, a page per query (keyset on the primary key)."""
    after = 0
    while True:
        query = (
            sa.select(AUDIT)
            .where(AUDIT.c.at < cutoff, AUDIT.c.id > after, AUDIT.c.id <= last_id)
            .order_by(AUDIT.c.id)
            .limit(page)
        )
        async with db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            yield row
        if len(rows) < page:
            return
        after = rows[-1].id


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def write_archive(db: Database, cutoff: datetime, last_id: int, path: Path) -> int:
    """Write the rows to `path` (gzip JSON lines, mode 600, synced); returns how many."""
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            async for row in archived_rows(db, cutoff, last_id):
                gz.write(line(row))
                count += 1
        raw.flush()
        os.fsync(raw.fileno())
    return count


def archive_lines(path: Path) -> Generator[bytes, None, None]:
    """The lines of an archive, read to the end (so gzip checks its CRC and length)."""
    with gzip.open(path, "rb") as gz:
        yield from gz


async def verify_archive(db: Database, path: Path, cutoff: datetime, last_id: int) -> int:
    """Compare the file line by line with the rows in the database; raises ArchiveRefused on any
    difference (a missing, extra, changed or unreadable line). Returns the number of rows."""
    lines = archive_lines(path)
    count = 0
    try:
        async for row in archived_rows(db, cutoff, last_id):
            if next(lines, None) != line(row):
                raise ArchiveRefused(f"{path} does not match audit row {row.id}; nothing deleted")
            count += 1
        if next(lines, None) is not None:
            raise ArchiveRefused(f"{path} has more lines than the database has rows; nothing deleted")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveRefused(f"{path} cannot be read back ({exc}); nothing deleted") from exc
    finally:
        lines.close()
    return count


def archived_ids(path: Path, batch: int) -> Iterator[list[int]]:
    ids: list[int] = []
    for text in archive_lines(path):
        ids.append(int(json.loads(text)["id"]))
        if len(ids) == batch:
            yield ids
            ids = []
    if ids:
        yield ids


async def delete_archived(db: Database, path: Path, cutoff: datetime, batch: int = BATCH) -> int:
    """Delete the rows whose ids are in the (verified) archive, `batch` ids per transaction."""
    deleted = 0
    for ids in archived_ids(path, batch):
        async with db.engine.begin() as conn:
            result = await conn.execute(AUDIT.delete().where(AUDIT.c.id.in_(ids), AUDIT.c.at < cutoff))
        deleted += result.rowcount
    return deleted


async def archive_audit(
    db: Database, before: date, target: Path, today: date | None = None, batch: int = BATCH
) -> ArchiveResult:
    """Archive the audit rows before `before` (Asia/Shanghai) to `target`, then delete them."""
    cutoff = cutoff_instant(before, today or datetime.now(ZONE).date())
    sidecar = checksum_path(target)
    for existing in (target, sidecar):
        if existing.exists():
            raise ArchiveRefused(f"{existing} exists; an archive is never overwritten, choose another file")
    if not target.parent.is_dir():
        raise ArchiveRefused(f"{target.parent} is not a directory")
    async with db.engine.connect() as conn:
        last_id, expected = (
            await conn.execute(sa.select(sa.func.max(AUDIT.c.id), sa.func.count()).where(AUDIT.c.at < cutoff))
        ).one()
    if not expected:
        return ArchiveResult(before, 0, 0, None, None)
    partial = target.with_name(target.name + ".partial")
    try:
        written = await write_archive(db, cutoff, last_id, partial)
        if written != expected:
            raise ArchiveRefused(f"{written} rows written but {expected} counted; nothing deleted")
        if await verify_archive(db, partial, cutoff, last_id) != written:
            raise ArchiveRefused("the archive does not hold every row; nothing deleted")
        digest = sha256_of(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    sidecar_partial = sidecar.with_name(sidecar.name + ".partial")
    sidecar_partial.write_text(f"{digest}  {target.name}\n", encoding="ascii")
    _sync(sidecar_partial)
    os.replace(sidecar_partial, sidecar)
    _sync(target.parent)
    if sha256_of(target) != digest:  # the file as it lies under its final name
        raise ArchiveRefused(f"{target} changed after it was verified; nothing deleted")
    deleted = await delete_archived(db, target, cutoff, batch)
    return ArchiveResult(before, written, deleted, target, digest)
