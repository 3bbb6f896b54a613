"""The fault-injection suite: the whole platform under a steady load of chains (resident, contract,
referral, acceptance, booking, claim through the gateway) while, one after the other, PostgreSQL is
stopped, the Kafka broker is stopped and started again, the referral service is SIGKILLed (web and worker,
each restarted by its supervisor) and Redis is stopped. Then the load stops, the events settle, and the checks
(`checks.py`) say what was lost or doubled.

    python -m tests.faults.suite [--outage 10] [--lead 10] [--tail 20] [--workers 4]

(`make faults`; a bounded run is part of `make test`, tests/faults/test_faults.py). It prints one row per
fault: writes sent and acknowledged in its window, acknowledged writes lost, duplicated, still refused
after the client's retries, and the seconds from the fault's end until every kind of write succeeded again.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .checks import Inspector, Verdict
from .load import Load, Write
from .platform import FaultPlatform

KINDS = ("resident", "contract", "referral", "accept", "booking", "claim")


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[FaultPlatform], object]
    heal: Callable[[FaultPlatform], object]
    outage: bool = True  # the component stays down for `--outage` seconds before `heal`


FAULTS = [
    Fault("none (baseline)", lambda p: None, lambda p: None, outage=False),
    Fault("PostgreSQL stopped", lambda p: p.infra("pg", "stop"), lambda p: p.infra("pg", "start")),
    Fault("Kafka broker restarted", lambda p: p.infra("kafka", "stop"), lambda p: p.infra("kafka", "start")),
    Fault(  # both roles: requests in flight, and the relay and consumer mid-batch
        "referral service SIGKILLed",
        lambda p: p.kill("referral", "referral-worker"),
        lambda p: [p.wait_ready(name, 60) for name in ("referral", "referral-worker")],
        outage=False,
    ),
    Fault("Redis stopped", lambda p: p.infra("redis", "stop"), lambda p: p.infra("redis", "start")),
]


@dataclass
class Window:
    fault: Fault
    healed_at: float = 0.0


@dataclass
class Row:
    fault: str
    sent: int
    acked: int
    lost: int
    duplicated: int
    refused: int
    recovery: float | None


async def run(
    platform: FaultPlatform, outage: float, lead: float, tail: float, workers: int
) -> tuple[list[Row], Verdict, list[Write]]:
    load = Load(platform.gateway, workers)
    inspector = Inspector(platform)
    try:
        await load.prepare(datetime.now(UTC).year)
        await settle(inspector, 300)  # the demo county reaches every read model before the clock starts
        runner = asyncio.create_task(load.run())
        windows = []
        for fault in FAULTS:
            load.phase = fault.name
            window = Window(fault)
            await asyncio.sleep(lead)
            print(f"{time.strftime('%H:%M:%S')} {fault.name}", flush=True)
            await asyncio.to_thread(fault.inject, platform)
            if fault.outage:
                await asyncio.sleep(outage)
            await asyncio.to_thread(fault.heal, platform)
            window.healed_at = time.monotonic()
            windows.append(window)
            await asyncio.sleep(tail)
        load.stop()
        await runner
        await settle(inspector, 300)
        verdict = await inspector.verdict(load.writes)
    finally:
        await load.close()
    return [row(w, load.writes, verdict) for w in windows], verdict, load.writes


async def settle(inspector: Inspector, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await inspector.settled():
        await asyncio.sleep(1)


def row(window: Window, writes: list[Write], verdict: Verdict) -> Row:
    mine = [w for w in writes if w.phase == window.fault.name]
    lost = {id(w) for w in verdict.lost}
    firsts = []
    for kind in KINDS:
        done = [w.finished for w in writes if w.kind == kind and w.acked and w.finished >= window.healed_at]
        firsts.append(min(done) - window.healed_at if done else None)
    return Row(
        window.fault.name,
        sent=len(mine),
        acked=sum(w.acked for w in mine),
        lost=sum(id(w) in lost for w in mine),
        duplicated=sum(w.acked and w.ref in verdict.duplicated_refs for w in mine),
        refused=sum(not w.acked and not 400 <= w.status < 500 for w in mine),
        recovery=None if None in firsts else max(f for f in firsts if f is not None),
    )


def report(rows: list[Row], verdict: Verdict, writes: list[Write] | None = None) -> str:
    lines = [
        "| fault | writes sent | acknowledged | lost | duplicated | failed after retries | recovered in |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rec = "—" if r.recovery is None else f"{r.recovery:.1f} s"
        lines.append(
            f"| {r.fault} | {r.sent} | {r.acked} | {r.lost} | {r.duplicated} | {r.refused} | {rec} |"
        )
    lines.append("")
    refusals = Counter(
        (w.phase, w.kind, w.status, w.detail[:120]) for w in writes or () if 400 <= w.status < 500
    )
    lines += [
        f"refused ({n}x): {phase} / {kind}: {status} {detail}"
        for (phase, kind, status, detail), n in refusals.items()
    ]
    lines.append("invariants: " + ("all hold" if verdict.clean else "BROKEN"))
    lines += [f"  lost: {w.kind} {w.entity} ({w.phase})" for w in verdict.lost[:20]]
    lines += [f"  duplicated: {d}" for d in verdict.duplicated[:20]]
    lines += [f"  {p}" for p in verdict.problems]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--outage", type=float, default=10.0, help="seconds PostgreSQL, Kafka, Redis stay down"
    )
    parser.add_argument("--lead", type=float, default=10.0, help="seconds of load before each fault")
    parser.add_argument("--tail", type=float, default=20.0, help="seconds of load after each fault heals")
    parser.add_argument("--workers", type=int, default=4, help="concurrent clients")
    parser.add_argument("--demo-residents", type=int, default=2000)
    args = parser.parse_args()
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the platform's servers are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with FaultPlatform(demo_residents=args.demo_residents) as platform:
        rows, verdict, writes = asyncio.run(run(platform, args.outage, args.lead, args.tail, args.workers))
        restarts = {n: p.restarts for n, p in platform.procs.items() if p.restarts}
    print(report(rows, verdict, writes))
    print(f"service restarts by the supervisor: {restarts or 'none'}")
    sys.exit(0 if verdict.clean and all(r.lost == r.duplicated == r.refused == 0 for r in rows) else 1)


if __name__ == "__main__":
    main()
