"""Referral command line: `python -m services.referral migrate | serve | relay`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import uvicorn

from shared.migrations import ensure_database, upgrade
from shared.topics import ensure_topics

from .events import TOPICS
from .readmodel import REGISTRY_TOPICS
from .settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.referral")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database and topics if needed; apply every migration")
    sub.add_parser("relay", help="run only the outbox relay")
    serve = sub.add_parser("serve", help="run the HTTP service with its relay, consumer and sweeps")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    settings = get_settings()
    if args.command == "migrate":
        asyncio.run(ensure_database(settings.database_url))
        upgrade(MIGRATIONS, settings.database_url)
        asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, [*TOPICS, *REGISTRY_TOPICS]))
    elif args.command == "relay":
        from shared.outbox import OutboxRelay

        asyncio.run(OutboxRelay(settings.database_url, settings.kafka_bootstrap_servers).run())
    else:
        uvicorn.run(
            "services.referral.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=20,
        )


if __name__ == "__main__":
    main()
