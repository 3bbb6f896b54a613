"""Billing command line: `python -m services.billing migrate | serve | worker | relay | replay-dlt`."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli import add_common_commands, run_common_command

from .events import TOPICS
from .readmodel import CONSUMED_TOPICS
from .settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.billing")
    add_common_commands(parser.add_subparsers(dest="command", required=True), default_port=8003)
    args = parser.parse_args()
    run_common_command(
        args,
        get_settings(),
        "services.billing.app:create_app",
        Path(__file__).parent / "migrations",
        [*TOPICS, *CONSUMED_TOPICS],
        worker_factory="services.billing.app:create_worker",
    )


if __name__ == "__main__":
    main()
