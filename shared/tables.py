"""Platform tables in each service's own database: outbox, inbox (services with events; the gateway has
none since its 0003) and idempotency keys.

Each service's metadata gets its own copy via `add_platform_tables`, and its first migration calls
`create_platform_tables`, so the schema always comes from the migrations. A migration must build the same
schema forever, so what the migrations call is frozen: `create_platform_tables` creates the idempotency
table as it first was, and `scope_idempotency_keys` (a later migration) turns it into today's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB


def add_platform_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    sa.Index("ix_outbox_unpublished", outbox.c.seq, postgresql_where=outbox.c.published_at.is_(None))
    inbox = sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    return outbox, inbox, idempotency_table(metadata)


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    """A stored reply per (caller, route, key): one caller's key never answers another caller, or
    another route. Rows older than the TTL count as absent and are purged (shared/retention.py)."""
    table = sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("route", sa.String(400), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    sa.Index("ix_idempotency_keys_created_at", table.c.created_at)
    return table


def _idempotency_table_0001(metadata: sa.MetaData) -> sa.Table:
    """The idempotency table as every service's 0001 created it (one global key). Frozen."""
    return sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def create_platform_tables() -> None:
    """Used inside a service's first Alembic migration."""
    create_event_tables()
    _idempotency_table_0001(sa.MetaData()).create(op.get_bind())


def drop_platform_tables() -> None:
    drop_event_tables()
    op.drop_table("idempotency_keys")


def create_event_tables() -> None:
    """Outbox and inbox as every service's 0001 created them, with the relay's wake-up trigger; also the
    downgrade of a migration that dropped them (the gateway's 0003). Frozen."""
    outbox, inbox, _ = add_platform_tables(sa.MetaData())
    for table in (outbox, inbox):
        table.create(op.get_bind())
    # Wake the relay as soon as an event commits (it still polls, so NOTIFY is only a speed-up).
    op.execute(
        "CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def drop_event_tables() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    for name in ("inbox", "outbox"):
        op.drop_table(name)


LEGACY = "legacy"  # rows from before scoping: no caller or route known, and no route is named "legacy"


def scope_idempotency_keys() -> None:
    """Each service's `idempotency_per_caller` migration: keys per (subject, route, key), and an index
    for the retention purge.

    Rows stored before have no known caller or route; they get subject and route "legacy", so they can
    never answer a request (that would be the cross-caller leak again) and are purged after the TTL.
    Frozen: a later change to the table is a new step, not an edit here."""
    for name, length in (("subject", 200), ("route", 400)):
        op.add_column(
            "idempotency_keys", sa.Column(name, sa.String(length), nullable=False, server_default=LEGACY)
        )
        op.alter_column("idempotency_keys", name, server_default=None)
    op.drop_constraint("idempotency_keys_pkey", "idempotency_keys", type_="primary")
    op.create_primary_key("idempotency_keys_pkey", "idempotency_keys", ["subject", "route", "key"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def unscope_idempotency_keys() -> None:
    """Back to one global key: of the rows sharing a key only the newest is kept."""
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_constraint("idempotency_keys_pkey", "idempotency_keys", type_="primary")
    op.execute(
        "DELETE FROM idempotency_keys a USING idempotency_keys b WHERE a.key = b.key"
        " AND (a.created_at, a.subject, a.route) < (b.created_at, b.subject, b.route)"
    )
    op.drop_column("idempotency_keys", "route")
    op.drop_column("idempotency_keys", "subject")
    op.create_primary_key("idempotency_keys_pkey", "idempotency_keys", ["key"])
