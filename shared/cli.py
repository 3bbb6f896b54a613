"""The commands every service has: `migrate` (database, migrations, topics) and `serve` (the web role:
HTTP only); a service with events also has `worker` (relay, consumers, its sweeps, retention, with probes
and metrics on their own port), `relay` (the outbox relay alone, e.g. to drain an outbox by hand) and
`replay-dlt`. Each service's `__main__` adds its own commands around these."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from pathlib import Path

import uvicorn
from uvicorn.importer import import_from_string

from shared.app import create_worker_app
from shared.dlt import replay_dead_letters
from shared.logging import configure_logging
from shared.migrations import ensure_database, upgrade
from shared.outbox import OutboxRelay
from shared.settings import EventServiceSettings, ServiceSettings
from shared.topics import ensure_topics
from shared.worker import Worker

WORKER_PORT = 9100
# SIGTERM: 5 s for requests in flight, then ~4 s of bounded shutdown (web: audit flush; worker: relay flush,
# consumers): the process is gone within 10 s whatever is down (Kubernetes waits 30 s)
GRACEFUL_SECONDS = 5


def add_common_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], default_port: int, events: bool = True
) -> None:
    """`events=False` for a service without outbox or consumers (the gateway): no worker, relay or DLT."""
    migrate = sub.add_parser(
        "migrate", help="create the database (and topics) if needed; apply every migration"
    )
    migrate.add_argument(
        "--no-topics",
        action="store_true",
        help="leave the Kafka topics alone (web pods: they must start while the broker is away)",
    )
    serve = sub.add_parser("serve", help="run the HTTP service (the web role: no relay, consumers or sweeps)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=default_port)
    if not events:
        return
    worker = sub.add_parser(
        "worker", help="run the outbox relay, the consumers, the sweeps and retention (the worker role)"
    )
    worker.add_argument("--host", default="0.0.0.0", help="where /healthz, /readyz and /metrics listen")
    worker.add_argument("--port", type=int, default=WORKER_PORT)
    sub.add_parser("relay", help="run only the outbox relay (the worker runs it too)")
    replay = sub.add_parser(
        "replay-dlt", help="put dead-lettered records back on their topic (fix the cause first)"
    )
    replay.add_argument("--topic", required=True, help="the original topic; its <topic>.dlt is read")
    replay.add_argument("--only-consumer", help="only records this consumer group set aside")


def kafka_of(settings: ServiceSettings) -> str:
    if not isinstance(settings, EventServiceSettings):
        raise SystemExit(f"{settings.service_name} has no events")
    return settings.kafka_bootstrap_servers


def run_common_command(
    args: argparse.Namespace,
    settings: ServiceSettings,
    app_factory: str,
    migrations: Path,
    topics: Iterable[str] = (),
    worker_factory: str | None = None,
) -> None:
    """`app_factory` and `worker_factory` are "module:function" names of the service's web app and Worker."""
    # every command logs as the services do (JSON lines), from its first line on
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    if args.command == "migrate":
        asyncio.run(ensure_database(settings.database_url))
        upgrade(migrations, settings.database_url)
        if topics and not getattr(args, "no_topics", False):
            names = list(topics)  # and each one's dead-letter twin: a broker may not auto-create topics
            asyncio.run(ensure_topics(kafka_of(settings), [*names, *(f"{t}.dlt" for t in names)]))
    elif args.command == "relay":
        asyncio.run(OutboxRelay(settings.database_url, kafka_of(settings)).run())
    elif args.command == "replay-dlt":
        count = asyncio.run(replay_dead_letters(kafka_of(settings), args.topic, args.only_consumer))
        print(f"replayed {count} record(s) from {args.topic}.dlt")
    elif args.command == "serve":
        uvicorn.run(
            app_factory,
            factory=True,
            host=args.host,
            port=args.port,
            access_log=False,  # shared.access_log writes one JSON line per request instead
            log_config=None,  # uvicorn's loggers go through shared.logging's JSON handler
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
    elif args.command == "worker" and worker_factory:
        worker: Worker = import_from_string(worker_factory)()
        uvicorn.run(
            create_worker_app(worker),
            host=args.host,
            port=args.port,
            access_log=False,  # shared.access_log writes one JSON line per request instead
            log_config=None,  # uvicorn's loggers go through shared.logging's JSON handler
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
    else:
        raise SystemExit(f"unknown command {args.command}")
