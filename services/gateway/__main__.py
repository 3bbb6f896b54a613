"""Gateway command line: `python -m services.gateway migrate | serve | create-user | reseal | archive-audit`."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from pathlib import Path

from shared.cli import add_common_commands, run_common_command
from shared.db import Database
from shared.pii import PiiVault, SealedValueError, split_keys
from shared.principal import Role
from shared.settings import MissingSecretError

from . import models as m
from .archive import ArchiveRefused, archive_audit
from .auth import hasher
from .keys import reseal
from .settings import GatewaySettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


async def create_user(username: str, password: str, role: str) -> str:
    db = Database(get_settings().database_url)
    try:
        async with db.uow() as uow:
            if await uow.session.get(m.User, username):
                return f"user {username} exists; nothing changed"
            uow.session.add(m.User(username=username, password_hash=hasher.hash(password), role=Role(role)))
            await uow.commit()
        return f"user {username} ({role}) created"
    finally:
        await db.dispose()


async def reseal_keys(settings: GatewaySettings, batch: int) -> str:
    vault = PiiVault(settings.key_secret, split_keys(settings.key_old_secrets))
    db = Database(settings.database_url)
    try:
        moved = await reseal(db, vault, batch)
    except SealedValueError:  # what was re-sealed so far is committed; a rerun resumes
        raise SystemExit(
            "gateway reseal stopped: a signing key opens under no configured key; "
            "add the KEY_SECRET that sealed it to KEY_OLD_SECRETS"
        ) from None
    finally:
        await db.dispose()
    return f"{moved} signing keys re-sealed under key {vault.key_id}; KEY_OLD_SECRETS may now be emptied"


async def archive_audit_log(settings: GatewaySettings, before: date, target: Path, batch: int) -> str:
    db = Database(settings.database_url)
    try:
        result = await archive_audit(db, before, target, batch=batch)
    except ArchiveRefused as exc:
        raise SystemExit(f"gateway archive-audit: {exc}") from None
    finally:
        await db.dispose()
    return result.report()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    add_common_commands(sub, default_port=8000, events=False)  # no outbox, no consumers: no worker
    user = sub.add_parser("create-user", help="bootstrap an account (the first commission admin)")
    user.add_argument("--username", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--role", default="commission_admin", choices=[r.value for r in Role])
    again = sub.add_parser("reseal", help="re-seal the signing keys under KEY_SECRET (after a rotation)")
    again.add_argument("--batch", type=int, default=100)
    archive = sub.add_parser(
        "archive-audit",
        help="move audit rows older than a cutoff (at least six months ago) to a verified gzip JSON-lines file",
    )
    archive.add_argument("--before", required=True, type=date.fromisoformat, help="YYYY-MM-DD, Asia/Shanghai")
    archive.add_argument("--to", required=True, type=Path, help="the archive file (never overwritten)")
    archive.add_argument("--batch", type=int, default=1000, help="rows deleted per transaction")
    args = parser.parse_args()
    try:
        settings = get_settings()
    except MissingSecretError as exc:
        raise SystemExit(f"gateway: {exc}") from None
    if args.command == "create-user":
        print(asyncio.run(create_user(args.username, args.password, args.role)))
    elif args.command == "reseal":
        print(asyncio.run(reseal_keys(settings, args.batch)))
    elif args.command == "archive-audit":
        print(asyncio.run(archive_audit_log(settings, args.before, args.to, args.batch)))
    else:
        run_common_command(args, settings, "services.gateway.app:create_app", MIGRATIONS)


if __name__ == "__main__":
    main()
