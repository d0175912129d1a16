"""origination: the bank's lending limits and the per-borrower rows that serialise exposure reservations

Revision ID: origination_0101_exposure
Revises: origination_0100
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'origination_0101_exposure'
down_revision: str | Sequence[str] | None = 'origination_0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('credit_settings',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('borrower_exposure_cap', sa.BigInteger(), nullable=True),
        sa.Column('turnover_multiple', sa.String(length=40), nullable=False),
        sa.Column('debt_to_income_ceiling', sa.String(length=40), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_settings'))
    )
    op.create_table('exposure_locks',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_exposure_locks_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', 'customer_id', name=op.f('pk_exposure_locks'))
    )


def downgrade() -> None:
    op.drop_table('exposure_locks')
    op.drop_table('credit_settings')
