"""Referral command line: `python -m services.referral migrate | serve | worker | relay | replay-dlt`."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli import add_common_commands, run_common_command

from .events import TOPICS
from .readmodel import REGISTRY_TOPICS
from .settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.referral")
    add_common_commands(parser.add_subparsers(dest="command", required=True), default_port=8002)
    args = parser.parse_args()
    run_common_command(
        args,
        get_settings(),
        "services.referral.app:create_app",
        Path(__file__).parent / "migrations",
        [*TOPICS, *REGISTRY_TOPICS],
        worker_factory="services.referral.app:create_worker",
    )


if __name__ == "__main__":
    main()
