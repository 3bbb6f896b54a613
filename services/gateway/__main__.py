"""Gateway command line: `python -m services.gateway migrate | serve | create-user`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from shared.auth import Role
from shared.cli import add_common_commands, run_common_command
from shared.db import Database

from . import models as m
from .auth import hasher
from .settings import get_settings

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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    add_common_commands(sub, default_port=8000)
    user = sub.add_parser("create-user", help="bootstrap an account (the first commission admin)")
    user.add_argument("--username", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--role", default="commission_admin", choices=[r.value for r in Role])
    args = parser.parse_args()
    if args.command == "create-user":
        print(asyncio.run(create_user(args.username, args.password, args.role)))
    else:
        run_common_command(args, get_settings(), "services.gateway.app:create_app", MIGRATIONS)


if __name__ == "__main__":
    main()
