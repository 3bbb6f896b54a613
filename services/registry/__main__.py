"""Registry command line: `python -m services.registry migrate | serve | worker | relay | replay-dlt |
load-demo | reseal`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from shared.cli import add_common_commands, run_common_command
from shared.db import Database
from shared.settings import MissingSecretError

from .events import TOPICS
from .settings import RegistrySettings, get_settings


async def reseal(settings: RegistrySettings, batch: int) -> str:
    from .usecases.people import ResealError, reseal_residents

    vault = settings.vault()
    db = Database(settings.database_url)
    try:
        moved = await reseal_residents(db, vault, batch)
    except ResealError as exc:  # what was re-sealed so far is committed; a rerun resumes
        raise SystemExit(f"registry reseal stopped: {exc}") from None
    finally:
        await db.dispose()
    return f"{moved} residents re-sealed under key {vault.key_id}; PII_OLD_KEYS may now be emptied"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.registry")
    sub = parser.add_subparsers(dest="command", required=True)
    add_common_commands(sub, default_port=8001)
    demo = sub.add_parser("load-demo", help="load the demo county (does nothing if it is already there)")
    demo.add_argument("--residents", type=int, default=20_000)
    again = sub.add_parser(
        "reseal", help="re-seal residents' national IDs and phones under PII_KEY (after a key rotation)"
    )
    again.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    try:
        settings = get_settings()
    except MissingSecretError as exc:
        raise SystemExit(f"registry: {exc}") from None
    if args.command == "load-demo":
        from .demo import load_demo

        print(asyncio.run(load_demo(settings, residents=args.residents)))
    elif args.command == "reseal":
        print(asyncio.run(reseal(settings, args.batch)))
    else:
        run_common_command(
            args,
            settings,
            "services.registry.app:create_app",
            Path(__file__).parent / "migrations",
            TOPICS.values(),
            worker_factory="services.registry.app:create_worker",
        )


if __name__ == "__main__":
    main()
