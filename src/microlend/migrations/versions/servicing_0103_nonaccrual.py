"""servicing: non-accrual (停止计息) with off-balance memo accounts; a bank's non-accrual threshold and policy

Revision ID: servicing_0103_nonaccrual
Revises: servicing_0101_booking_approvals
Create Date: 2026-11-30 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0103_nonaccrual'
down_revision: str | Sequence[str] | None = 'servicing_0101_booking_approvals'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEMO_ACCOUNTS = (
    ('7101', 'Off-balance interest receivable', '表外应收利息'),
    ('7102', 'Off-balance penalty receivable', '表外应收罚息'),
    ('7999', 'Off-balance contra', '表外科目对转'),
)


def upgrade() -> None:
    # plain ADD COLUMNs with defaults (no table copy under the loans' foreign keys on SQLite)
    op.add_column('loans', sa.Column('accrual_status', sa.String(length=20), server_default='accruing',
                                     nullable=False))
    op.add_column('loans', sa.Column('interest_suspended', sa.BigInteger(), server_default=sa.text('0'),
                                     nullable=False))
    op.add_column('loans', sa.Column('penalty_suspended', sa.BigInteger(), server_default=sa.text('0'),
                                     nullable=False))
    op.create_index('ix_loans_tenant_accrual', 'loans', ['tenant_id', 'accrual_status'], unique=False)
    op.add_column('servicing_settings', sa.Column('nonaccrual_days', sa.Integer(), server_default=sa.text('90'),
                                                  nullable=False))
    op.add_column('servicing_settings', sa.Column('nonaccrual_on_npl', sa.Boolean(),
                                                  server_default=sa.text('true'), nullable=False))
    op.add_column('servicing_settings', sa.Column('nonaccrual_policy', sa.String(length=10),
                                                  server_default='reverse', nullable=False))
    for code, name, name_zh in _MEMO_ACCOUNTS:  # every bank that has a chart of accounts gets the memo accounts
        op.execute(
            sa.text(
                "INSERT INTO ledger_accounts (tenant_id, code, name, name_zh, type) "
                "SELECT a.tenant_id, :code, :name, :name_zh, 'off_balance' FROM ledger_accounts a "
                "WHERE a.code = '1001' AND NOT EXISTS (SELECT 1 FROM ledger_accounts b "
                "WHERE b.tenant_id = a.tenant_id AND b.code = :code)"
            ).bindparams(code=code, name=name, name_zh=name_zh)
        )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ledger_accounts WHERE code IN ('7101', '7102', '7999')"))
    with op.batch_alter_table('servicing_settings', schema=None) as batch_op:
        batch_op.drop_column('nonaccrual_policy')
        batch_op.drop_column('nonaccrual_on_npl')
        batch_op.drop_column('nonaccrual_days')
    op.drop_index('ix_loans_tenant_accrual', table_name='loans')
    op.drop_column('loans', 'penalty_suspended')
    op.drop_column('loans', 'interest_suspended')
    op.drop_column('loans', 'accrual_status')
