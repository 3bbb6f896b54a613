"""`make up` keeps each service alive with scripts/supervise.sh: a process that dies is started again with a
growing back-off, the terminal says so, and SIGTERM stops the process and its supervisor promptly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "scripts" / "supervise.sh"
# dies twice (exit 3), then runs until it is told to stop, writing its pid for the test
CHILD = """
import os, pathlib, sys, time
runs = pathlib.Path(sys.argv[1]); n = len(runs.read_text()) if runs.exists() else 0
runs.write_text("x" * (n + 1)); print("run", n + 1, flush=True)
if n < 2: sys.exit(3)
pathlib.Path(sys.argv[2]).write_text(str(os.getpid())); time.sleep(120)
"""


def test_a_dead_service_is_restarted_with_backoff_and_sigterm_stops_all(tmp_path: Path) -> None:
    runs, pidfile, log = tmp_path / "runs", tmp_path / "pid", tmp_path / "svc.log"
    began = time.monotonic()
    sup = subprocess.Popen(
        ["bash", str(SCRIPT), "svc", str(log), sys.executable, "-c", CHILD, str(runs), str(pidfile)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not pidfile.exists() and time.monotonic() - began < 20:
            time.sleep(0.1)
        assert pidfile.exists(), "the third run never started"
        # 1 s after the first death, 2 s after the second: the back-off grows
        assert time.monotonic() - began >= 3
        assert log.read_text().split() == ["run", "1", "run", "2", "run", "3"]
        child = int(pidfile.read_text())
        stopping = time.monotonic()
        sup.send_signal(signal.SIGTERM)
        sup.wait(10)
        assert time.monotonic() - stopping < 5
        _, err = sup.communicate()
        assert "!! svc stopped (exit 3); restarting in 1s" in err
        assert "!! svc stopped (exit 3); restarting in 2s" in err
        assert "restarting in 4s" not in err  # the stop was not taken for a crash
        try:
            os.kill(child, 0)
            raise AssertionError("the supervised process outlived its supervisor")
        except ProcessLookupError:
            pass
    finally:
        if sup.poll() is None:
            sup.kill()
