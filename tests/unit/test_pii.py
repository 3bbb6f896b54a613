"""The personal-data vault and the key settings, without a database: what an operator relies on when
keys rotate, and what an attacker with write access to a table cannot do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import uuid

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.gateway.settings import GatewaySettings
from services.referral.settings import ReferralSettings
from services.registry.settings import RegistrySettings
from shared.pii import PiiVault, SealedValueError, resident_owner, split_keys
from shared.settings import MissingSecretError

ALICE, BOB = uuid.uuid4(), uuid.uuid4()
NID = "411081195005010123"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def legacy_seal(key: str, value: str) -> bytes:
    """What the vault wrote before key ids: SHA-256-derived key, nonce + ciphertext, no associated data."""
    aead = AESGCM(hashlib.sha256(b"enc" + base64.b64decode(key)).digest())
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, value.encode(), None)


def legacy_hash(key: str, value: str) -> str:
    mac_key = hashlib.sha256(b"mac" + base64.b64decode(key)).digest()
    return hmac.new(mac_key, value.encode(), hashlib.sha256).hexdigest()


def test_round_trip_hides_the_value_and_carries_the_key_id() -> None:
    vault = PiiVault(new_key())
    sealed = vault.seal(NID, resident_owner(ALICE, "national_id"))
    assert b"411081" not in sealed
    assert sealed[:1] == b"\x01" and sealed[1:5].hex() == vault.key_id and len(vault.key_id) == 8
    assert vault.open(sealed, resident_owner(ALICE, "national_id")) == NID
    assert vault.is_current(sealed)
    assert vault.seal("x", b"o") != vault.seal("x", b"o")  # random nonce


def test_key_id_comes_from_the_key() -> None:
    key = new_key()
    assert PiiVault(key).key_id == PiiVault(key).key_id != PiiVault(new_key()).key_id


def test_a_value_copied_onto_another_row_or_field_does_not_open() -> None:
    vault = PiiVault(new_key())
    sealed = vault.seal(NID, resident_owner(ALICE, "national_id"))
    with pytest.raises(SealedValueError):
        vault.open(sealed, resident_owner(BOB, "national_id"))
    with pytest.raises(SealedValueError):
        vault.open(sealed, resident_owner(ALICE, "phone"))


def test_tampered_or_truncated_ciphertext_is_refused() -> None:
    vault = PiiVault(new_key())
    owner = resident_owner(ALICE, "phone")
    sealed = bytearray(vault.seal("13812345678", owner))
    sealed[-1] ^= 1
    with pytest.raises(SealedValueError):
        vault.open(bytes(sealed), owner)
    with pytest.raises(SealedValueError):
        vault.open(b"\x01abc", owner)
    with pytest.raises(SealedValueError):
        vault.open(b"", owner)


def test_rotation_new_key_seals_old_key_still_opens() -> None:
    a, b = new_key(), new_key()
    owner = resident_owner(ALICE, "national_id")
    under_a = PiiVault(a).seal(NID, owner)
    rotated = PiiVault(b, [a])
    assert rotated.open(under_a, owner) == NID
    assert not rotated.is_current(under_a)
    under_b = rotated.seal(NID, owner)
    assert under_b[1:5].hex() == rotated.key_id == PiiVault(b).key_id
    assert PiiVault(b).open(under_b, owner) == NID  # after the re-seal, the old key can go
    with pytest.raises(SealedValueError):
        PiiVault(b).open(under_a, owner)  # ...but not before
    with pytest.raises(SealedValueError):
        PiiVault(a).open(under_b, owner)


def test_legacy_values_and_hashes_stay_readable() -> None:
    a = new_key()
    old = legacy_seal(a, NID)
    assert PiiVault(a).open(old, resident_owner(ALICE, "national_id")) == NID
    assert PiiVault(new_key(), [a]).open(old, b"anything") == NID  # no owner was bound back then
    assert not PiiVault(a).is_current(old)
    assert legacy_hash(a, NID) in PiiVault(a).lookup_hashes(NID)
    assert legacy_hash(a, NID) != PiiVault(a).lookup_hash(NID)  # HKDF now, not a bare SHA-256


def test_lookup_hashes_cover_every_key_current_first() -> None:
    a, b = new_key(), new_key()
    rotated = PiiVault(b, [a])
    hashes = rotated.lookup_hashes(NID)
    assert hashes[0] == rotated.lookup_hash(NID) == PiiVault(b).lookup_hash(NID)
    assert PiiVault(a).lookup_hash(NID) in hashes and len(hashes) == len(set(hashes)) == 4
    assert rotated.lookup_hash("41108119500501012x") == rotated.lookup_hash(" 41108119500501012X")
    assert PiiVault(a).lookup_hash("a") != PiiVault(b).lookup_hash("a")


def test_encryption_and_lookup_keys_are_independent() -> None:
    """HKDF with distinct labels: the HMAC key is not the AES key, and neither is the configured key."""
    key = new_key()
    vault = PiiVault(key)
    raw = base64.b64decode(key)
    assert vault.lookup_hash("x") != hmac.new(raw, b"X", hashlib.sha256).hexdigest()
    sealed = vault.seal("x", b"o")
    with pytest.raises(InvalidTag):  # the configured key itself is not the AES key
        AESGCM(raw).decrypt(sealed[5:17], sealed[17:], sealed[:5] + b"o")


def test_malformed_keys_are_refused() -> None:
    for bad in ("", "short", base64.b64encode(b"short").decode(), "not base64 at all!!"):
        with pytest.raises(ValueError, match="32 random bytes"):
            PiiVault(bad)
    assert [k.get_secret_value() for k in split_keys(" a, ,b ,")] == ["a", "b"]


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PII_KEY", "PII_OLD_KEYS", "KEY_SECRET", "KEY_OLD_SECRETS", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_secrets")
def test_services_refuse_to_start_without_their_key_outside_development() -> None:
    with pytest.raises(MissingSecretError, match=r"PII_KEY is not set.*base64.*os\.urandom\(32\)"):
        RegistrySettings()
    with pytest.raises(MissingSecretError, match="KEY_SECRET is not set"):
        GatewaySettings(environment="production")
    with pytest.raises(MissingSecretError, match="PII_KEY is not set"):
        RegistrySettings(pii_key="  ")  # empty counts as missing
    with pytest.raises(MissingSecretError, match="PII_KEY is malformed"):
        RegistrySettings(pii_key="c2hvcnQ=")
    with pytest.raises(MissingSecretError, match="PII_OLD_KEYS has a malformed key"):
        RegistrySettings(pii_key=new_key(), pii_old_keys=f"{new_key()},oops")
    assert ReferralSettings().environment == "production"  # a service without keys needs none


@pytest.mark.usefixtures("no_secrets")
def test_keys_come_from_the_environment_and_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = new_key(), new_key()
    monkeypatch.setenv("PII_KEY", b)
    monkeypatch.setenv("PII_OLD_KEYS", a)
    settings = RegistrySettings()
    assert b not in repr(settings) and a not in str(settings)
    vault = settings.vault()
    assert vault.key_id == PiiVault(b).key_id
    assert vault.open(PiiVault(a).seal("x", b"o"), b"o") == "x"


@pytest.mark.usefixtures("no_secrets")
def test_development_mode_falls_back_to_a_fixed_key_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="yigongti.settings"):
        first = RegistrySettings(environment="development")
        gateway = GatewaySettings(environment="Development")
    assert "PII_KEY is not set" in caplog.text and "DEVELOPMENT key" in caplog.text
    assert "KEY_SECRET is not set" in caplog.text
    assert (
        first.vault().key_id == RegistrySettings(environment="development").vault().key_id
    )  # data stays readable
    assert first.pii_key.get_secret_value() != gateway.key_secret.get_secret_value()  # separate keys
    explicit = new_key()
    assert (
        RegistrySettings(environment="development", pii_key=explicit).vault().key_id
        == PiiVault(explicit).key_id
    )
