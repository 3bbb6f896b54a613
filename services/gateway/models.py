"""Gateway tables: API clients (HIS systems), users, refresh tokens, signing keys (sealed), revoked
access tokens, and the append-only audit of personal-data access."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.tables import idempotency_table


class Base(DeclarativeBase):
    pass


# No outbox or inbox: the gateway publishes and consumes no events (migration 0003 dropped them).
idempotency_keys = idempotency_table(Base.metadata)
TZ = sa.DateTime(timezone=True)


class ApiClient(Base):
    """A hospital HIS using OAuth2 client credentials, bound to its hospital."""

    __tablename__ = "api_clients"
    client_id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(200))
    institution_id: Mapped[uuid.UUID]
    community_id: Mapped[uuid.UUID | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())


class User(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40))
    institution_id: Mapped[uuid.UUID | None]
    community_id: Mapped[uuid.UUID | None]
    practitioner_id: Mapped[uuid.UUID | None]
    resident_id: Mapped[uuid.UUID | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    username: Mapped[str] = mapped_column(sa.ForeignKey("users.username"), index=True)
    expires_at: Mapped[datetime] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    sealed_private_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    public_jwk: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    retired_at: Mapped[datetime | None] = mapped_column(TZ)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(TZ, index=True)


class AuditEntry(Base):
    """Append-only: who touched personal data, acting for which institution, and with what outcome."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZ, index=True)
    subject: Mapped[str] = mapped_column(sa.String(200), index=True)
    role: Mapped[str] = mapped_column(sa.String(40))
    institution_id: Mapped[uuid.UUID | None]
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(500))
    status: Mapped[int]
    request_id: Mapped[str | None] = mapped_column(sa.String(100))
