"""Personal data at rest: AES-GCM ciphertext for reading back, HMAC-SHA256 for exact lookup.

A national ID or phone is never stored in clear: `seal` gives the ciphertext, `lookup_hash` a keyed
hash that supports "find resident by ID" without decrypting every row. Responses show `mask_*`.

Why the format is what it is:
- Keys rotate. A sealed value starts with a version byte and the 4-byte id of the key that sealed it,
  so a vault holding the current key and older ones opens any of them, and a re-seal can find (in
  SQL, by prefix) the values not yet under the current key. The key id is derived from the key, so
  operators never name keys.
- The AES and HMAC keys are derived from the configured key with HKDF-SHA256 and distinct `info`
  labels, so the encryption key and the lookup-hash key are independent.
- The owner of a value (e.g. ``resident:<uuid>:national_id``) is AES-GCM associated data: a sealed
  value copied onto another row or field does not open.
- Values sealed before all this (nonce + ciphertext, SHA-256-derived key, no associated data) still
  open, so existing databases keep working until `reseal` rewrites them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

KEY_BYTES = 32
VERSION = b"\x01"
HEADER_BYTES = 1 + 4  # version, key id
NONCE_BYTES = 12
TAG_BYTES = 16
GENERATE_HINT = "python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'"

Secret = str | SecretStr


class SealedValueError(ValueError):
    """A sealed value that no configured key opens for this owner (wrong key, wrong row, or tampered)."""


def decode_key(key: Secret) -> bytes:
    """The 32 key bytes from their base64 text; ValueError (with how to make one) otherwise."""
    text = key.get_secret_value() if isinstance(key, SecretStr) else key
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ValueError(
            f"a key must be {KEY_BYTES} random bytes, base64-encoded; generate one: {GENERATE_HINT}"
        )
    return raw


def split_keys(keys: Secret) -> list[SecretStr]:
    """Comma-separated keys (e.g. `PII_OLD_KEYS`) as a list; blanks ignored."""
    text = keys.get_secret_value() if isinstance(keys, SecretStr) else keys
    return [SecretStr(k.strip()) for k in text.split(",") if k.strip()]


def _hkdf(raw: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(raw)


class _Key:
    """One configured key and everything derived from it."""

    def __init__(self, key: Secret) -> None:
        raw = decode_key(key)
        self.id = _hkdf(raw, b"yigongti/v1/key-id", 4)
        self.header = VERSION + self.id
        self.aead = AESGCM(_hkdf(raw, b"yigongti/v1/aes-256-gcm", KEY_BYTES))
        self.mac_key = _hkdf(raw, b"yigongti/v1/lookup-hmac-sha256", KEY_BYTES)
        # the derivation before key ids existed: read-only, for values sealed back then
        self.legacy_aead = AESGCM(hashlib.sha256(b"enc" + raw).digest())
        self.legacy_mac_key = hashlib.sha256(b"mac" + raw).digest()


def _hash(mac_key: bytes, value: str) -> str:
    return hmac.new(mac_key, value.strip().upper().encode(), hashlib.sha256).hexdigest()


class PiiVault:
    """Seals under the current key; opens under the current key or any older one still configured."""

    def __init__(self, key: Secret, old_keys: Iterable[Secret] = ()) -> None:
        self._current = _Key(key)
        self._keys = [self._current, *(_Key(k) for k in old_keys)]
        self._by_id = {k.id: k for k in reversed(self._keys)}

    @property
    def key_id(self) -> str:
        """The current key's id (8 hex), as it appears in every value sealed from now on."""
        return self._current.id.hex()

    @property
    def current_header(self) -> bytes:
        """The first bytes of a value sealed under the current key (a re-seal skips those)."""
        return self._current.header

    def seal(self, value: str, owner: bytes) -> bytes:
        """Ciphertext of `value` that opens only for the same `owner` (e.g. b"resident:<id>:phone")."""
        nonce = os.urandom(NONCE_BYTES)
        header = self._current.header
        return header + nonce + self._current.aead.encrypt(nonce, value.encode(), header + owner)

    def open(self, sealed: bytes, owner: bytes) -> str:
        key = self._by_id.get(sealed[1:HEADER_BYTES]) if sealed[:1] == VERSION else None
        if key is not None:
            body = sealed[HEADER_BYTES:]
            try:
                return key.aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], key.header + owner).decode()
            except InvalidTag:
                pass  # wrong owner or tampered; or a legacy value whose random nonce looks like a header
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise SealedValueError("too short to be a sealed value")
        for k in self._keys:
            try:
                return k.legacy_aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None).decode()
            except InvalidTag:
                continue
        raise SealedValueError("no configured key opens this value for this owner")

    def is_current(self, sealed: bytes) -> bool:
        """Sealed under the current key (nothing for a re-seal to do)."""
        return sealed[:HEADER_BYTES] == self._current.header

    def lookup_hash(self, value: str) -> str:
        """The keyed hash stored for lookups, under the current key."""
        return _hash(self._current.mac_key, value)

    def lookup_hashes(self, value: str) -> list[str]:
        """Every hash a stored row may carry for `value` while keys rotate: the current key's first,
        then each older key's, then the pre-HKDF ones. Lookups and uniqueness checks use them all."""
        hashes_ = [_hash(k.mac_key, value) for k in self._keys]
        hashes_ += [_hash(k.legacy_mac_key, value) for k in self._keys]
        return list(dict.fromkeys(hashes_))


def resident_owner(resident_id: object, field: str) -> bytes:
    """What a resident's sealed field is bound to: the row and the column."""
    return f"resident:{resident_id}:{field}".encode()


def mask_national_id(value: str) -> str:
    """110105********123X style: region code and last 4 digits shown."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str) -> str:
    return value[:3] + "****" + value[-4:] if len(value) >= 7 else "*" * len(value)
