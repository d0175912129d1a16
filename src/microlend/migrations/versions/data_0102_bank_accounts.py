"""data: the bank's own accounts and their transactions (imported from core banking)

Revision ID: data_0102_bank_accounts
Revises: data_0101_provider_gateway
Create Date: 2026-11-30 02:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'data_0102_bank_accounts'
down_revision: str | Sequence[str] | None = 'data_0101_provider_gateway'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('data_bank_accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('account_no', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('holder_id_index', sa.String(length=64), nullable=False),
        sa.Column('holder_id_masked', sa.String(length=32), nullable=False),
        sa.Column('opened_on', sa.Date(), nullable=False),
        sa.Column('closed_on', sa.Date(), nullable=True),
        sa.Column('product', sa.String(length=40), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_data_bank_accounts_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_data_bank_accounts')),
        sa.UniqueConstraint('tenant_id', 'account_no', name='uq_data_bank_accounts_tenant_account')
    )
    with op.batch_alter_table('data_bank_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_bank_accounts_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_bank_accounts_holder_id_index'), ['holder_id_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_bank_accounts_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('data_bank_transactions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('account_no', sa.String(length=40), nullable=False),
        sa.Column('txn_ref', sa.String(length=64), nullable=False),
        sa.Column('booked_on', sa.Date(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('balance_after', sa.BigInteger(), nullable=True),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('counterparty', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_data_bank_transactions_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_data_bank_transactions')),
        sa.UniqueConstraint('tenant_id', 'account_no', 'txn_ref', name='uq_data_bank_transactions_ref')
    )
    with op.batch_alter_table('data_bank_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_data_bank_transactions_account_day', ['tenant_id', 'account_no', 'booked_on'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('data_bank_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_data_bank_transactions_account_day')
    op.drop_table('data_bank_transactions')
    with op.batch_alter_table('data_bank_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_bank_accounts_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_data_bank_accounts_holder_id_index'))
        batch_op.drop_index(batch_op.f('ix_data_bank_accounts_customer_id'))
    op.drop_table('data_bank_accounts')
