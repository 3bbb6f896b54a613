"""Issue #11, "Fuzzing in make test": every operation of every service, through the gateway, with the
tokens of a real commission login and a real resident login, fed generated valid and invalid input (and,
for the commission, schemathesis' deterministic edge cases). No answer may be a 5xx, and every documented
answer must match its documented media type and schema (tests/fuzz/harness.py says how each answer is
judged and what is left out).

`make test` runs a few derandomized examples per operation (reproducible, under two minutes);
`make fuzz` runs many more with a fresh seed. Knobs: FUZZ_EXAMPLES (per operation and caller, default 10),
FUZZ_SEED (unset: derandomized), FUZZ_SECONDS (the time budget per caller for the generated examples, default 180)."""

from __future__ import annotations

import os

import pytest

from .conftest import Platform
from .harness import fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SEED = int(os.environ["FUZZ_SEED"]) if os.environ.get("FUZZ_SEED") else None
SECONDS = float(os.environ.get("FUZZ_SECONDS", "180"))


@pytest.mark.fuzz
@pytest.mark.parametrize("caller", ["resident", "commission_admin"])
def test_every_operation_survives_generated_input(fuzz_platform: Platform, caller: str) -> None:
    report = fuzz(
        fuzz_platform.url,
        caller,
        fuzz_platform.tokens[caller],
        fuzz_platform.ids,
        examples=EXAMPLES,
        seed=SEED,
        budget_seconds=SECONDS,
        # the edge cases once, as the caller that passes the gateway's role checks: a resident's would
        # mostly stop at those checks again
        coverage=caller == "commission_admin",
    )
    print(f"\n{report.summary()} [examples per operation {EXAMPLES}, seed {SEED or 'derandomized'}]")
    if report.findings:
        print(report.details())
    assert len(report.operations) >= 100, report.operations  # the whole merged document was fuzzed
    assert not report.findings, f"{report.summary()}\n{report.details()}"
