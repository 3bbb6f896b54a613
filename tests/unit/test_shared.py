import dataclasses
import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from shared.auth import TokenVerifier
from shared.clock import FixedClock
from shared.devtokens import DevSigner
from shared.events import EventEnvelope
from shared.idempotency import Scope, bounded
from shared.money import allocate, apply_rate, fen_to_yuan, yuan_to_fen
from shared.pii import mask_national_id, mask_phone
from shared.problems import Problem
from shared.writes import fingerprint, request_scope


def test_allocate_adds_up_to_the_fen() -> None:
    parts = allocate(100, [1, 1, 1])
    assert parts == [34, 33, 33] and sum(parts) == 100
    parts = allocate(1_000_000_01, [Decimal("0.3"), Decimal("0.3"), Decimal("0.4")])
    assert sum(parts) == 1_000_000_01
    assert allocate(-10, [1, 2]) == [-3, -7]  # an overspend splits like a surplus, sign kept


def test_allocate_rejects_bad_weights() -> None:
    for weights in ([], [0, 0], [1, -1]):
        with pytest.raises(ValueError):
            allocate(10, weights)


def test_money_conversions() -> None:
    assert yuan_to_fen("12.345") == 1235
    assert fen_to_yuan(-5) == "-0.05"
    assert apply_rate(1001, Decimal("0.05")) == 50


def test_masks() -> None:
    assert mask_national_id("411081195005010123") == "411081********0123"
    assert mask_phone("13812345678") == "138****5678"


def test_envelope_round_trip() -> None:
    event = EventEnvelope(
        type="registry.institution.created",
        source="/registry",
        subject="institution/1",
        data={"name": "医院"},
    )
    back = EventEnvelope.from_bytes(event.to_bytes())
    assert back == event and back.specversion == "1.0"


def test_fingerprint_depends_on_body() -> None:
    assert fingerprint("POST", "/a", {"x": 1}) == fingerprint("POST", "/a", {"x": 1})
    assert fingerprint("POST", "/a", {"x": 1}) != fingerprint("POST", "/a", {"x": 2})


def test_long_scope_values_become_a_hash_that_fits_the_key_index() -> None:
    assert bounded("POST /v1/claims", 400) == "POST /v1/claims"
    long_a, long_b = "POST /" + "医" * 200, "POST /" + "医" * 199 + "院"  # 600 bytes of UTF-8 each
    assert bounded(long_a, 400).startswith("sha256:") and len(bounded(long_a, 400)) == 71
    assert bounded(long_a, 400) == bounded(long_a, 400) != bounded(long_b, 400)


def test_a_key_belongs_to_the_caller_and_the_route() -> None:
    signer = DevSigner.generate()
    app = SimpleNamespace(state=SimpleNamespace(verifier=TokenVerifier.from_json(json.dumps(signer.jwks()))))

    def request(path: str, token: str | None = None) -> Request:
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        return Request({"type": "http", "method": "POST", "path": path, "headers": headers, "app": app})

    assert request_scope(request("/v1/sessions/1/cancel"), "k") == Scope(
        "anonymous", "POST /v1/sessions/1/cancel", "k"
    )
    token = signer.mint("his_system", subject="his@hospital1")
    assert request_scope(request("/v1/claims", token), "k") == Scope("his@hospital1", "POST /v1/claims", "k")
    with pytest.raises(Problem):  # a token that does not verify is no caller at all
        request_scope(request("/v1/claims", token[:-4]), "k")
    assert request_scope(request("/" + "x" * 500), "k").route.startswith("sha256:")


def test_clock_shows_shanghai_date() -> None:
    clock = FixedClock(datetime(2026, 3, 1, 17, 0, tzinfo=UTC))  # 01:00 on 2 March in Shanghai
    assert clock.today() == date(2026, 3, 2)


def test_verified_tokens_are_cached_but_still_expire_and_follow_the_key_set() -> None:
    signer = DevSigner.generate()
    verifier = TokenVerifier.from_json(json.dumps(signer.jwks()))
    token = signer.mint("resident", ttl=1, resident_id="00000000-0000-0000-0000-000000000001")
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # the signature is not checked again
    verifier.keys = {}  # the key was rotated out
    with pytest.raises(Problem):
        verifier.verify(token)
    verifier.keys = dict(verifier.static)
    assert verifier.verify(token).subject == first.subject
    time.sleep(1.1)
    with pytest.raises(Problem, match="expired"):
        verifier.verify(token)


class DroppedByAnotherThread(dict[str, Any]):
    """The race of two threads verifying one expired token: each read the stale entry, and the other
    removed it in between, so by the time this thread drops it, it is already gone."""

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key, default)
        self.pop(key, None)  # the other thread's removal, right after our read
        return value


def test_two_threads_dropping_one_expired_cache_entry_do_not_fail() -> None:
    signer = DevSigner.generate()
    verifier = TokenVerifier.from_json(json.dumps(signer.jwks()))
    token = signer.mint("resident", resident_id="00000000-0000-0000-0000-000000000001")
    first = verifier.verify(token)
    kid = verifier._verified[token][0]
    stale = dataclasses.replace(first, expires_at=int(time.time()) - 1)  # its cache entry has expired
    verifier._verified = DroppedByAnotherThread({token: (kid, stale)})
    again = verifier.verify(token)  # was a KeyError (a 500): `del` of the entry the other thread dropped
    assert again == first and again is not stale  # the token itself is still valid: verified afresh
    assert verifier._verified[token] == (kid, again)
