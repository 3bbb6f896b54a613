"""Personal data at rest: AES-GCM ciphertext for reading back, HMAC-SHA256 for exact lookup.

A national ID or phone is never stored in clear: `seal` gives the ciphertext, `lookup_hash` a keyed
hash that supports "find resident by ID" without decrypting every row. Responses show `mask_*`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class PiiVault:
    def __init__(self, key_b64: str) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("PII key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(hashlib.sha256(b"enc" + key).digest())
        self._mac_key = hashlib.sha256(b"mac" + key).digest()

    def seal(self, value: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), None)

    def open(self, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], None).decode()

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._mac_key, value.strip().upper().encode(), hashlib.sha256).hexdigest()


def mask_national_id(value: str) -> str:
    """110105********123X style: region code and last 4 digits shown."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str) -> str:
    return value[:3] + "****" + value[-4:] if len(value) >= 7 else "*" * len(value)
