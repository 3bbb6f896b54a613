"""Registry command line: `python -m services.registry migrate | load-demo | serve`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import uvicorn

from shared.migrations import ensure_database, upgrade
from shared.topics import ensure_topics

from .events import TOPICS
from .settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.registry")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database and topics if needed; apply every migration")
    demo = sub.add_parser("load-demo", help="load the demo county (does nothing if it is already there)")
    demo.add_argument("--residents", type=int, default=20_000)
    sub.add_parser("relay", help="run only the outbox relay (when the web pods run with RUN_WORKERS=false)")
    serve = sub.add_parser("serve", help="run the HTTP service with its outbox relay")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    settings = get_settings()
    if args.command == "migrate":
        asyncio.run(ensure_database(settings.database_url))
        upgrade(MIGRATIONS, settings.database_url)
        asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, TOPICS.values()))
    elif args.command == "load-demo":
        from .demo import load_demo

        print(asyncio.run(load_demo(settings, residents=args.residents)))
    elif args.command == "relay":
        from shared.outbox import OutboxRelay

        asyncio.run(OutboxRelay(settings.database_url, settings.kafka_bootstrap_servers).run())
    else:
        uvicorn.run(
            "services.registry.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=20,
        )


if __name__ == "__main__":
    main()
