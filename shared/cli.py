"""The commands every service has: `migrate` (database, migrations, topics), `relay` (outbox relay on
its own) and `serve` (uvicorn). Each service's `__main__` adds its own commands around these."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from pathlib import Path

import uvicorn

from shared.dlt import replay_dead_letters
from shared.migrations import ensure_database, upgrade
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings
from shared.topics import ensure_topics


def add_common_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_port: int) -> None:
    sub.add_parser("migrate", help="create the database (and topics) if needed; apply every migration")
    sub.add_parser("relay", help="run only the outbox relay (when the web pods run with RUN_WORKERS=false)")
    replay = sub.add_parser(
        "replay-dlt", help="put dead-lettered records back on their topic (fix the cause first)"
    )
    replay.add_argument("--topic", required=True, help="the original topic; its <topic>.dlt is read")
    replay.add_argument("--only-consumer", help="only records this consumer group set aside")
    serve = sub.add_parser("serve", help="run the HTTP service (with its relay, consumers and sweeps)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=default_port)


def run_common_command(
    args: argparse.Namespace,
    settings: ServiceSettings,
    app_factory: str,
    migrations: Path,
    topics: Iterable[str] = (),
) -> None:
    if args.command == "migrate":
        asyncio.run(ensure_database(settings.database_url))
        upgrade(migrations, settings.database_url)
        if topics:
            names = list(topics)  # and each one's dead-letter twin: a broker may not auto-create topics
            asyncio.run(
                ensure_topics(settings.kafka_bootstrap_servers, [*names, *(f"{t}.dlt" for t in names)])
            )
    elif args.command == "relay":
        asyncio.run(OutboxRelay(settings.database_url, settings.kafka_bootstrap_servers).run())
    elif args.command == "replay-dlt":
        count = asyncio.run(
            replay_dead_letters(settings.kafka_bootstrap_servers, args.topic, args.only_consumer)
        )
        print(f"replayed {count} record(s) from {args.topic}.dlt")
    elif args.command == "serve":
        uvicorn.run(
            app_factory,
            factory=True,
            host=args.host,
            port=args.port,
            log_level="warning",
            # SIGTERM: 5 s for requests in flight, then ~4 s of bounded shutdown (relay flush, consumers,
            # audit): the process is gone within 10 s whatever is down (Kubernetes waits 30 s)
            timeout_graceful_shutdown=5,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
    else:
        raise SystemExit(f"unknown command {args.command}")
