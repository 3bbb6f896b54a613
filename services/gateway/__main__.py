"""Gateway command line: `python -m services.gateway migrate | serve | create-user`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import uvicorn

from shared.auth import Role
from shared.db import Database
from shared.migrations import ensure_database, upgrade

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
    sub.add_parser("migrate", help="create the database if needed and apply every migration")
    user = sub.add_parser("create-user", help="bootstrap an account (the first commission admin)")
    user.add_argument("--username", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--role", default="commission_admin", choices=[r.value for r in Role])
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    settings = get_settings()
    if args.command == "migrate":
        asyncio.run(ensure_database(settings.database_url))
        upgrade(MIGRATIONS, settings.database_url)
    elif args.command == "create-user":
        print(asyncio.run(create_user(args.username, args.password, args.role)))
    else:
        uvicorn.run(
            "services.gateway.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=20,
        )


if __name__ == "__main__":
    main()
