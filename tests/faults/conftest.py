"""SIGTERM (a CI timeout, `make test` interrupted) unwinds the run like Ctrl-C, so the platform fixture's
teardown stops the suite's own PostgreSQL, Kafka, Redis and service processes."""

from __future__ import annotations

import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
