"""Who is calling, read off the request: tokens signed by the gateway (ES256 JWTs), verified in every
service against the gateway's public keys (JWKS) with no call back per request. This is the web side
(FastAPI dependencies, 401 problems); the Principal itself is plain data in `shared.principal`, and the
refusal of a known caller a domain error (`shared.errors.forbidden`), so use cases need neither.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shared.principal import Principal, Role
from shared.problems import Problem

__all__ = ["AUDIENCE", "Caller", "TokenVerifier", "authenticated", "current_principal", "unauthorized"]

ALGORITHMS = ["ES256"]
AUDIENCE = "yigongti"


def unauthorized(en: str, zh: str = "未认证或令牌无效") -> Problem:
    """No caller at all (no, a bad or an expired token): a 401, which only the edge can say."""
    return Problem(401, "unauthorized", zh, en)


def _uuid(claims: dict[str, Any], name: str) -> uuid.UUID | None:
    value = claims.get(name)
    try:
        return uuid.UUID(value) if value else None
    except (ValueError, TypeError):
        raise unauthorized(f"claim {name} is not a UUID") from None


class TokenVerifier:
    """Verifies ES256 tokens against a JWKS document (the gateway's /.well-known/jwks.json). With a
    `jwks_url`, a token signed by a key it does not know makes it fetch the document again (at most
    once a second), which is how a key rotation at the gateway reaches every service."""

    CACHE_SIZE = 10_000

    def __init__(self, jwks: dict[str, Any], jwks_url: str = "") -> None:
        self.static = dict(self._parse(jwks))
        self.keys = dict(self.static)
        self.jwks_url = jwks_url
        self._fetched_at = 0.0
        self._refresh_lock = threading.Lock()  # verification runs in worker threads
        # token → (kid, principal): a token's signature is checked once per process, not per request
        # (0.15 ms of CPU each); a hit is still refused once expired or once its key left the key set
        self._verified: dict[str, tuple[str, Principal]] = {}

    @staticmethod
    def _parse(jwks: dict[str, Any]) -> dict[str, Any]:
        return {str(k.key_id): k for k in jwt.PyJWKSet.from_dict(jwks).keys} if jwks.get("keys") else {}

    def refresh(self, kid: str) -> None:
        """Fetch the JWKS again because a token names `kid`. A thread that finds a fetch in flight waits
        for it (and then usually finds the key) instead of refusing a valid token; a key still unknown
        less than a second after a completed fetch is not fetched for again."""
        if not self.jwks_url:
            return
        with self._refresh_lock:
            if kid in self.keys or time.monotonic() - self._fetched_at < 1:
                return
            try:
                fetched = self._parse(httpx.get(self.jwks_url, timeout=3).json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError):
                fetched = None  # keep the keys we have; the gateway may be restarting
            finally:
                self._fetched_at = time.monotonic()
            if fetched is not None:
                self.keys = {**self.static, **fetched}

    @classmethod
    def from_json(cls, text: str, jwks_url: str = "") -> TokenVerifier:
        return cls(json.loads(text) if text.strip() else {"keys": []}, jwks_url)

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before, still unexpired and signed by a key still in the key
        set; None otherwise (then `verify` decides). Dictionary look-ups only: safe on the event loop."""
        hit = self._verified.get(token)
        if hit is not None:
            kid, principal = hit
            if kid in self.keys and (principal.expires_at is None or time.time() < principal.expires_at):
                return principal
            # another thread may have dropped the same stale entry since `get`: `del` would be a KeyError
            self._verified.pop(token, None)
        return None

    async def verify_async(self, token: str) -> Principal:
        """`verify` without blocking the event loop: a remembered token is answered in place; a new one
        (an ES256 check, perhaps a JWKS fetch) in the thread pool."""
        principal = self.remembered(token)
        if principal is not None:
            return principal
        return await run_in_threadpool(self.verify, token)

    def verify(self, token: str) -> Principal:
        principal = self.remembered(token)
        if principal is not None:
            return principal
        principal, kid = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (kid, principal)
        return principal

    def _verify(self, token: str) -> tuple[Principal, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("malformed token") from None
        if header.get("alg") not in ALGORITHMS:
            raise unauthorized("token algorithm not accepted")
        kid = str(header.get("kid", ""))
        key = self.keys.get(kid)
        if key is None:
            self.refresh(kid)
            key = self.keys.get(kid)
        if key is None:
            raise unauthorized("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=AUDIENCE,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired", "令牌已过期") from None
        except jwt.PyJWTError:
            raise unauthorized("token signature or claims invalid") from None
        try:
            role = Role(claims["role"])
        except ValueError:
            raise unauthorized("unknown role") from None
        principal = Principal(
            subject=str(claims["sub"]),
            role=role,
            institution_id=_uuid(claims, "institution_id"),
            community_id=_uuid(claims, "community_id"),
            resident_id=_uuid(claims, "resident_id"),
            practitioner_id=_uuid(claims, "practitioner_id"),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=claims.get("jti"),
            expires_at=claims.get("exp"),
        )
        return principal, str(header.get("kid", ""))


def _bearer(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("missing bearer token", "缺少访问令牌")
    return token.strip()


def current_principal(request: Request) -> Principal:
    """The caller, for code that is not async (it may verify a new token in place); a route's dependency is
    `authenticated` (`Caller`), which does not block the event loop."""
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(_bearer(request))


async def authenticated(request: Request) -> Principal:
    """The caller, as a dependency: async, so FastAPI does not send it to its thread pool (a queue and a
    thread hop per request) — a token seen before is answered on the loop, a new one in the pool."""
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify_async(_bearer(request))


Caller = Annotated[Principal, Depends(authenticated)]
