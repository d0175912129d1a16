"""decisioning: limit changes proposed by the periodic credit line review

Revision ID: decisioning_0002
Revises: origination_0002
Create Date: 2026-11-28 23:55:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'decisioning_0002'
down_revision: str | Sequence[str] | None = 'origination_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_limit_changes()


def downgrade() -> None:
    _drop_limit_changes()


def _create_limit_changes() -> None:
    op.create_table('limit_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('credit_line_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('current_limit', sa.BigInteger(), nullable=False),
        sa.Column('proposed_limit', sa.BigInteger(), nullable=False),
        sa.Column('reasons', sa.Text(), nullable=False),
        sa.Column('inputs', sa.Text(), nullable=False),
        sa.Column('policy_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_limit_changes_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_limit_changes'))
    )
    op.create_index('ix_limit_changes_tenant_status', 'limit_changes', ['tenant_id', 'status'], unique=False)
    op.create_index(op.f('ix_limit_changes_credit_line_id'), 'limit_changes', ['credit_line_id'], unique=False)


def _drop_limit_changes() -> None:
    op.drop_index(op.f('ix_limit_changes_credit_line_id'), table_name='limit_changes')
    op.drop_index('ix_limit_changes_tenant_status', table_name='limit_changes')
    op.drop_table('limit_changes')
