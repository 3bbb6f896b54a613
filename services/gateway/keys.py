"""Signing keys: ES256 key pairs kept sealed in the gateway's database, the newest signs, retired keys
stay in the JWKS for a grace period so tokens they signed still verify until they expire.

Each private key is sealed under `KEY_SECRET` and bound to its kid (a sealed key copied onto another
row does not open); `reseal` moves them all under a new `KEY_SECRET` after a rotation."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import AUDIENCE, TokenVerifier
from shared.db import Database
from shared.pii import PiiVault

from . import models as m


def owner(kid: str) -> bytes:
    """What a sealed private key is bound to."""
    return f"signing-key:{kid}".encode()


async def rotate(s: AsyncSession, vault: PiiVault, now: datetime) -> str:
    """Add a new signing key and retire the current ones (they stay published for the grace period)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    kid = uuid.uuid4().hex[:16]
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="ES256")
    await s.execute(sa.update(m.SigningKey).where(m.SigningKey.retired_at.is_(None)).values(retired_at=now))
    s.add(
        m.SigningKey(
            kid=kid,
            sealed_private_key=vault.seal(pem.decode(), owner(kid)),
            public_jwk=json.dumps(jwk),
            created_at=now,
        )
    )
    await s.flush()
    return kid


class KeyRing:
    """The keys as loaded from the database; refreshed after a rotation."""

    def __init__(self, signing_kid: str, signing_pem: str, jwks: dict[str, Any]) -> None:
        self.signing_kid = signing_kid
        self.signing_pem = signing_pem
        self.jwks = jwks
        self.verifier = TokenVerifier(jwks)

    @classmethod
    async def load(cls, s: AsyncSession, vault: PiiVault, now: datetime, grace: timedelta) -> KeyRing:
        rows = (
            (
                await s.execute(
                    sa.select(m.SigningKey)
                    .where(sa.or_(m.SigningKey.retired_at.is_(None), m.SigningKey.retired_at > now - grace))
                    .order_by(m.SigningKey.created_at.desc())
                )
            )
            .scalars()
            .all()
        )
        if not rows or rows[0].retired_at is not None:
            kid = await rotate(s, vault, now)
            return await cls.load(s, vault, now, grace) if kid else cls("", "", {"keys": []})
        return cls(
            rows[0].kid,
            vault.open(rows[0].sealed_private_key, owner(rows[0].kid)),
            {"keys": [json.loads(r.public_jwk) for r in rows]},
        )

    def sign(self, claims: dict[str, Any], ttl: int) -> tuple[str, str, int]:
        """A signed access token, its jti and its expiry (unix seconds)."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        exp = now + ttl
        body = {
            **{k: v for k, v in claims.items() if v is not None},
            "aud": AUDIENCE,
            "iat": now,
            "exp": exp,
            "jti": jti,
            "iss": "yigongti-gateway",
        }
        return (
            jwt.encode(body, self.signing_pem, algorithm="ES256", headers={"kid": self.signing_kid}),
            jti,
            exp,
        )


async def reseal(db: Database, vault: PiiVault, batch: int = 100) -> int:
    """Re-seal every signing key not yet under the current `KEY_SECRET`, `batch` rows per transaction,
    in kid order. Idempotent and restartable: rows already current are skipped. Returns how many moved."""
    moved, after = 0, ""
    while True:
        async with db.uow() as uow:
            rows = (
                await uow.session.execute(
                    sa.select(m.SigningKey.kid, m.SigningKey.sealed_private_key)
                    .where(m.SigningKey.kid > after)
                    .order_by(m.SigningKey.kid)
                    .limit(batch)
                    .with_for_update()
                )
            ).all()
            if not rows:
                return moved
            for kid, sealed in rows:
                if not vault.is_current(sealed):
                    pem = vault.open(sealed, owner(kid))
                    await uow.session.execute(
                        sa.update(m.SigningKey)
                        .where(m.SigningKey.kid == kid)
                        .values(sealed_private_key=vault.seal(pem, owner(kid)))
                    )
                    moved += 1
            await uow.commit()
        after = rows[-1].kid
