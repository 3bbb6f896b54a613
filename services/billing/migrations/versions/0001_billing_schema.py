"""billing schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 22:28:10.586216
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.tables import create_platform_tables, drop_platform_tables

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table('budgets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('parameter_version', sa.Integer(), nullable=False),
    sa.Column('covered_residents', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('capitation_pool', sa.BigInteger(), nullable=False),
    sa.Column('dip_budget', sa.BigInteger(), nullable=False),
    sa.Column('derivation', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'year')
    )
    op.create_table('claims',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('claim_no', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('institution_community_id', sa.Uuid(), nullable=True),
    sa.Column('tier', sa.String(length=20), nullable=False),
    sa.Column('resident_id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('year', sa.SmallInteger(), nullable=False),
    sa.Column('month', sa.SmallInteger(), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('diagnosis_icd10', sa.String(length=10), nullable=False),
    sa.Column('grassroots_disease', sa.Boolean(), nullable=False),
    sa.Column('dip_group', sa.String(length=40), nullable=True),
    sa.Column('dip_points', sa.Numeric(precision=14, scale=4), nullable=True),
    sa.Column('weighted_points', sa.Numeric(precision=14, scale=4), nullable=True),
    sa.Column('total_cost', sa.BigInteger(), nullable=False),
    sa.Column('eligible_cost', sa.BigInteger(), nullable=False),
    sa.Column('deductible_used', sa.BigInteger(), nullable=False),
    sa.Column('ratio', sa.Numeric(precision=5, scale=4), nullable=False),
    sa.Column('insurance_share', sa.BigInteger(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=True),
    sa.Column('chain_id', sa.Uuid(), nullable=True),
    sa.Column('referred', sa.Boolean(), nullable=False),
    sa.Column('out_of_community', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('institution_id', 'claim_no')
    )
    op.create_index('ix_claims_chain', 'claims', ['chain_id'], unique=False, postgresql_where=sa.text('chain_id IS NOT NULL'))
    op.create_index('ix_claims_period', 'claims', ['county_code', 'year', 'month'], unique=False)
    op.create_table('insurance_years',
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('parameter_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('closed_months', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('county_code', 'year')
    )
    op.create_table('journals',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=True),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('parameter_versions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('county_code', 'year', 'version')
    )
    op.create_table('rm_catalogue_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('catalogue', sa.String(length=20), nullable=False),
    sa.Column('icd10', sa.String(length=10), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_rm_catalogue_lookup', 'rm_catalogue_entries', ['county_code', 'icd10'], unique=False)
    op.create_table('rm_communities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('lead_institution_id', sa.Uuid(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('rm_contracts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('resident_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_rm_contracts_team_id'), 'rm_contracts', ['team_id'], unique=False)
    op.create_table('rm_institutions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tier', sa.String(length=20), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=True),
    sa.Column('membership', sa.String(length=20), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_rm_institutions_community_id'), 'rm_institutions', ['community_id'], unique=False)
    op.create_table('rm_referrals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('resident_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('from_institution_id', sa.Uuid(), nullable=False),
    sa.Column('to_institution_id', sa.Uuid(), nullable=True),
    sa.Column('replaces_referral_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('rm_residents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('home_institution_id', sa.Uuid(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('rm_teams',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('settlements',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('figures', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'year')
    )
    op.create_table('disputes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('claim_id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('charged', sa.BigInteger(), nullable=False),
    sa.Column('claimed', sa.BigInteger(), nullable=False),
    sa.Column('decided', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('decision_note', sa.String(length=2000), nullable=True),
    sa.Column('opened_by', sa.String(length=200), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_disputes_claim_id'), 'disputes', ['claim_id'], unique=False)
    op.create_table('ledger_lines',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('journal_id', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=40), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=True),
    sa.Column('institution_id', sa.Uuid(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['journal_id'], ['journals.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_ledger_lines_account', 'ledger_lines', ['account', 'community_id'], unique=False)
    op.create_index(op.f('ix_ledger_lines_journal_id'), 'ledger_lines', ['journal_id'], unique=False)

    # Every journal balances to the fen, checked at commit (lines of one journal come in one statement
    # or several; the check waits for all of them).
    op.execute(
        """
        CREATE FUNCTION ledger_journal_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT coalesce(sum(amount), 0) FROM ledger_lines WHERE journal_id = NEW.journal_id) <> 0 THEN
                RAISE EXCEPTION 'journal % does not balance', NEW.journal_id USING ERRCODE = '23514';
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER ledger_journal_balanced AFTER INSERT ON ledger_lines "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_journal_balanced()"
    )
    # The ledger is append-only: a correction is a new journal, never an edit.
    op.execute(
        """
        CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = '42501';
        END $$
        """
    )
    for table in ("journals", "ledger_lines"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )


def downgrade() -> None:
    for table in ("journals", "ledger_lines"):
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP TRIGGER ledger_journal_balanced ON ledger_lines")
    op.execute("DROP FUNCTION ledger_append_only")
    op.execute("DROP FUNCTION ledger_journal_balanced")
    op.drop_index(op.f('ix_ledger_lines_journal_id'), table_name='ledger_lines')
    op.drop_index('ix_ledger_lines_account', table_name='ledger_lines')
    op.drop_table('ledger_lines')
    op.drop_index(op.f('ix_disputes_claim_id'), table_name='disputes')
    op.drop_table('disputes')
    op.drop_table('settlements')
    op.drop_table('rm_teams')
    op.drop_table('rm_residents')
    op.drop_table('rm_referrals')
    op.drop_index(op.f('ix_rm_institutions_community_id'), table_name='rm_institutions')
    op.drop_table('rm_institutions')
    op.drop_index(op.f('ix_rm_contracts_team_id'), table_name='rm_contracts')
    op.drop_table('rm_contracts')
    op.drop_table('rm_communities')
    op.drop_index('ix_rm_catalogue_lookup', table_name='rm_catalogue_entries')
    op.drop_table('rm_catalogue_entries')
    op.drop_table('parameter_versions')
    op.drop_table('journals')
    op.drop_table('insurance_years')
    op.drop_index('ix_claims_period', table_name='claims')
    op.drop_index('ix_claims_chain', table_name='claims', postgresql_where=sa.text('chain_id IS NOT NULL'))
    op.drop_table('claims')
    op.drop_table('budgets')
    drop_platform_tables()
