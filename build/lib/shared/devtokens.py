"""Development signing key and tokens, for `make up` and the tests before (and beside) the gateway.

`python -m shared.devtokens init DIR` writes a fresh EC key pair into DIR (git-ignored .local/);
`python -m shared.devtokens mint DIR --role ... [--institution ...]` prints a token. Never used in a
deployment: there the gateway signs and services read its JWKS.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.auth import AUDIENCE


class DevSigner:
    def __init__(self, private_pem: bytes, kid: str) -> None:
        self.private_pem = private_pem
        self.kid = kid

    @classmethod
    def generate(cls) -> DevSigner:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(pem, uuid.uuid4().hex[:16])

    def jwks(self) -> dict[str, Any]:
        key = serialization.load_pem_private_key(self.private_pem, None)
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))  # type: ignore[arg-type]
        jwk.update(kid=self.kid, use="sig", alg="ES256")
        return {"keys": [jwk]}

    def mint(self, role: str, subject: str | None = None, ttl: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "sub": subject or f"{role}-{uuid.uuid4().hex[:6]}",
            "role": role,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + ttl,
            **{k: str(v) for k, v in claims.items() if v is not None},
        }
        return jwt.encode(body, self.private_pem, algorithm="ES256", headers={"kid": self.kid})

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "dev-signing-key.pem").write_bytes(self.private_pem)
        (directory / "dev-signing-kid").write_text(self.kid)
        (directory / "jwks.json").write_text(json.dumps(self.jwks()))

    @classmethod
    def load(cls, directory: Path) -> DevSigner:
        return cls(
            (directory / "dev-signing-key.pem").read_bytes(), (directory / "dev-signing-kid").read_text()
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.devtokens")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init")
    init.add_argument("dir", type=Path)
    mint = sub.add_parser("mint")
    mint.add_argument("dir", type=Path)
    mint.add_argument("--role", required=True)
    for name in ("institution_id", "community_id", "resident_id", "practitioner_id", "subject"):
        mint.add_argument(f"--{name.replace('_', '-')}", dest=name)
    args = parser.parse_args()
    if args.command == "init":
        if not (args.dir / "jwks.json").exists():
            DevSigner.generate().save(args.dir)
        print(args.dir / "jwks.json")
    else:
        signer = DevSigner.load(args.dir)
        print(
            signer.mint(
                args.role,
                subject=args.subject,
                institution_id=args.institution_id,
                community_id=args.community_id,
                resident_id=args.resident_id,
                practitioner_id=args.practitioner_id,
            )
        )


if __name__ == "__main__":
    main()
