"""Registry command line: `python -m services.registry migrate | load-demo | relay | serve`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from shared.cli import add_common_commands, run_common_command

from .events import TOPICS
from .settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.registry")
    sub = parser.add_subparsers(dest="command", required=True)
    add_common_commands(sub, default_port=8001)
    demo = sub.add_parser("load-demo", help="load the demo county (does nothing if it is already there)")
    demo.add_argument("--residents", type=int, default=20_000)
    args = parser.parse_args()
    settings = get_settings()
    if args.command == "load-demo":
        from .demo import load_demo

        print(asyncio.run(load_demo(settings, residents=args.residents)))
    else:
        run_common_command(
            args,
            settings,
            "services.registry.app:create_app",
            Path(__file__).parent / "migrations",
            TOPICS.values(),
        )


if __name__ == "__main__":
    main()
