"""data: the facts of each recorded answer the whole-book jobs read, extracted once when it arrives

Revision ID: data_0103_answer_facts
Revises: data_0102_bank_accounts
Create Date: 2026-11-30 12:20:00

Answers recorded before this revision get their facts when a whole-book read first needs them
(`microlend.data.answer_facts.backfill`: it decrypts them, which needs the bank's key, not available here).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'data_0103_answer_facts'
down_revision: str | Sequence[str] | None = 'data_0102_bank_accounts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('data_answer_facts',
        sa.Column('call_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('subject_index', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('found', sa.Boolean(), nullable=False),
        sa.Column('series_first', sa.Integer(), nullable=True),
        sa.Column('series', sa.LargeBinary(), nullable=True),
        sa.Column('counts', sa.LargeBinary(), nullable=True),
        sa.Column('overdue_now', sa.Integer(), nullable=True),
        sa.Column('overdue_level', sa.Integer(), nullable=True),
        sa.Column('cases', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['call_id'], ['data_provider_calls.id'],
                                name=op.f('fk_data_answer_facts_call_id_data_provider_calls')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_data_answer_facts_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('call_id', name=op.f('pk_data_answer_facts')),
    )
    with op.batch_alter_table('data_answer_facts', schema=None) as batch_op:
        batch_op.create_index('ix_data_answer_facts_tenant_kind', ['tenant_id', 'kind', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('data_answer_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_data_answer_facts_tenant_kind')
    op.drop_table('data_answer_facts')
