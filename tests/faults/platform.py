"""The whole platform for fault injection, on its own PostgreSQL, Kafka and Redis (under `.local/faults`,
on their own ports), so the suite can stop and restart them without touching the servers other tests or
`make up` use. The gateway and the three services run as real processes, each service in both roles
(`serve`, and `worker` for relay, consumers and sweeps), each process kept alive by a supervisor thread the
way `make up` keeps them (a process that dies is started again)."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "registry", "referral", "billing")
WORKERS = ("registry", "referral", "billing")  # the gateway has no events, so no worker
ADMIN_PASSWORD = "fault-suite-admin"


@dataclass(frozen=True)
class Ports:
    """Outside Linux's ephemeral range (32768-60999), apart from the test and `make up` ports; all shifted
    by `offset` (TEST_PORT_OFFSET) so parallel runs stay apart."""

    offset: int = field(default_factory=lambda: int(os.environ.get("TEST_PORT_OFFSET", "0")))

    @property
    def pg(self) -> int:
        return 25532 + self.offset

    @property
    def kafka(self) -> int:
        return 29192 + self.offset

    @property
    def controller(self) -> int:
        return 29193 + self.offset

    @property
    def redis(self) -> int:
        return 26479 + self.offset

    @property
    def http(self) -> dict[str, int]:
        """By process name: "referral", "referral-worker"."""
        web = {name: 18500 + self.offset + n for n, name in enumerate(SERVICES)}
        return web | {f"{name}-worker": 18510 + self.offset + n for n, name in enumerate(WORKERS)}


class Supervised:
    """One service process, restarted when it dies unless the suite stopped it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._keep, name=f"supervise-{name}", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.log.with_suffix(".pid").write_text(str(self.proc.pid))

    def _keep(self) -> None:
        while not self._stopping:
            assert self.proc is not None
            self.proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            time.sleep(0.5)
            self._spawn()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs; the supervisor starts it again."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        self._stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.with_suffix(".pid").unlink(missing_ok=True)


class FaultPlatform:
    """Start with `start()`, always `stop()` (a context manager does both)."""

    def __init__(self, ports: Ports | None = None, demo_residents: int = 1000) -> None:
        self.ports = ports or Ports()
        self.demo_residents = demo_residents
        self.state = ROOT / ".local" / f"faults{self.ports.offset or ''}"
        self.logs = self.state / "logs"
        self.pg_base = f"postgresql+asyncpg://postgres@127.0.0.1:{self.ports.pg}"
        self.kafka = f"127.0.0.1:{self.ports.kafka}"
        self.redis = f"redis://127.0.0.1:{self.ports.redis}/0"
        self.gateway = f"http://127.0.0.1:{self.ports.http['gateway']}"
        self.procs: dict[str, Supervised] = {}
        keys = {k: base64.b64encode(os.urandom(32)).decode() for k in ("PII_KEY", "KEY_SECRET")}
        self._env = {
            **os.environ,
            **keys,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "REDIS_URL": self.redis,
            "LOG_LEVEL": "WARNING",
            "SWEEP_SECONDS": "5",
            # a load test is not an attack: the gateway's per-client limits stay out of the way
            "RATE_LIMIT_BURST": "100000",
            "RATE_LIMIT_PER_SECOND": "100000",
            "UPSTREAM_TIMEOUT_SECONDS": "10",
            "AUTH_JWKS_URL": f"{self.gateway}/.well-known/jwks.json",
            **{
                f"{n.upper()}_URL": f"http://127.0.0.1:{p}"
                for n, p in self.ports.http.items()
                if n in SERVICES and n != "gateway"
            },
        }
        for var in ("AUTH_JWKS_FILE", "AUTH_JWKS", "DATABASE_URL", "ENVIRONMENT"):
            self._env.pop(var, None)

    # --- the data stores, through the project's own scripts -------------------------------------------
    def infra(self, server: str, action: str) -> None:
        env = {
            **os.environ,
            "STATE_DIR": str(self.state),
            "PGPORT": str(self.ports.pg),
            "KAFKA_PORT": str(self.ports.kafka),
            "KAFKA_CONTROLLER_PORT": str(self.ports.controller),
            "REDIS_PORT": str(self.ports.redis),
        }
        subprocess.run(
            [str(ROOT / "scripts" / f"{server}.sh"), action], env=env, check=True, stdout=subprocess.DEVNULL
        )

    def service_env(self, name: str) -> dict[str, str]:
        return {**self._env, "DATABASE_URL": f"{self.pg_base}/faults_{name}"}

    def cli(self, name: str, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", f"services.{name}", *args],
            env=self.service_env(name),
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for pidfile in self.logs.glob("*.pid"):  # a run killed half-way left its services running
            with contextlib.suppress(ValueError, KeyError, OSError):
                pid, listens = int(pidfile.read_text()), self.ports.http[pidfile.stem]
                # only if that pid is still one of ours: a pid can be reused by any other process
                if f"--port\0{listens}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            pidfile.unlink()
        for server in ("pg", "kafka", "redis"):
            self.infra(server, "stop")  # a run killed half-way left them running: start afresh
        for sub in ("pg", "kafka", "redis"):
            subprocess.run(["rm", "-rf", str(self.state / sub)], check=True)
        for server in ("pg", "kafka", "redis"):
            self.infra(server, "start")
        for name in SERVICES:
            self.cli(name, "migrate")
        self.cli("gateway", "create-user", "--username", "admin", "--password", ADMIN_PASSWORD)
        self.cli("registry", "load-demo", "--residents", str(self.demo_residents))
        roles = [(name, "serve", name) for name in SERVICES]
        roles += [(f"{name}-worker", "worker", name) for name in WORKERS]
        for proc, role, name in roles:
            port = str(self.ports.http[proc])
            argv = [sys.executable, "-m", f"services.{name}", role, "--host", "127.0.0.1", "--port", port]
            self.procs[proc] = Supervised(proc, argv, self.service_env(name), self.logs / f"{proc}.log")
            self.procs[proc].start()
        for proc, _, _ in roles:
            self.wait_ready(proc, 60)

    def kill(self, *names: str) -> None:
        """SIGKILL these processes at once; their supervisors start them again."""
        for name in names:
            self.procs[name].kill()

    def wait_ready(self, name: str, seconds: float) -> float:
        """Seconds until `/readyz` of process `name` ("referral", "referral-worker") answers 200."""
        began = time.monotonic()
        url = f"http://127.0.0.1:{self.ports.http[name]}/readyz"
        while time.monotonic() - began < seconds:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready after {seconds} s; see {self.logs / (name + '.log')}")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        for server in ("redis", "kafka", "pg"):
            try:
                self.infra(server, "stop")
            except subprocess.CalledProcessError as exc:
                print(f"stopping {server} failed: {exc}", file=sys.stderr)

    def __enter__(self) -> FaultPlatform:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
