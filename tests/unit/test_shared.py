import base64
import json
import os
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.auth import TokenVerifier
from shared.clock import FixedClock
from shared.devtokens import DevSigner
from shared.events import EventEnvelope
from shared.idempotency import fingerprint
from shared.money import allocate, apply_rate, fen_to_yuan, yuan_to_fen
from shared.pii import PiiVault, mask_national_id, mask_phone
from shared.problems import Problem


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


def test_pii_vault_round_trip_and_keyed_hash() -> None:
    vault = PiiVault(base64.b64encode(os.urandom(32)).decode())
    sealed = vault.seal("411081195005010123")
    assert b"411081" not in sealed
    assert vault.open(sealed) == "411081195005010123"
    assert vault.seal("x") != vault.seal("x")  # random nonce
    assert vault.lookup_hash("41108119500501012x") == vault.lookup_hash("41108119500501012X")
    other = PiiVault(base64.b64encode(os.urandom(32)).decode())
    assert other.lookup_hash("a") != vault.lookup_hash("a")
    with pytest.raises(ValueError):
        PiiVault(base64.b64encode(b"short").decode())


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
