"""servicing: upfront fees deferred and amortised by the effective-interest method (account 1305 and each
installment's share); revolving drawdowns keep their daily-balance product and settle interest monthly

Revision ID: servicing_0110_fee_eir
Revises: servicing_0109_restructuring
Create Date: 2026-11-30 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0110_fee_eir'
down_revision: str | Sequence[str] | None = 'servicing_0109_restructuring'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACCOUNT = ('1305', 'Deferred loan fees (unearned income)', '贷款利息调整（未实现手续费收益）', 'contra_asset')
_AMORTISING = sa.text('fee_amortised < fee_amortisation')


def upgrade() -> None:
    # plain ADD COLUMNs with defaults (no table copy under the loans' foreign keys on SQLite)
    op.add_column('loan_installments', sa.Column('fee_amortisation', sa.BigInteger(), server_default=sa.text('0'),
                                                 nullable=False))
    op.add_column('loan_installments', sa.Column('fee_amortised', sa.BigInteger(), server_default=sa.text('0'),
                                                 nullable=False))
    op.create_index('ix_loan_installments_amortising', 'loan_installments', ['tenant_id', 'start_day'],
                    sqlite_where=_AMORTISING, postgresql_where=_AMORTISING)
    op.add_column('loans', sa.Column('balance_product', sa.BigInteger(), server_default=sa.text('0'),
                                     nullable=False))
    op.add_column('servicing_products', sa.Column('settlement_day', sa.Integer(), server_default=sa.text('20'),
                                                  nullable=False))
    op.add_column('servicing_products', sa.Column('interest_due_days', sa.Integer(), server_default=sa.text('1'),
                                                  nullable=False))
    code, name, name_zh, kind = _ACCOUNT  # every bank that has a chart of accounts gets it
    op.execute(
        sa.text(
            "INSERT INTO ledger_accounts (tenant_id, code, name, name_zh, type) "
            "SELECT a.tenant_id, :code, :name, :name_zh, :kind FROM ledger_accounts a "
            "WHERE a.code = '1001' AND NOT EXISTS (SELECT 1 FROM ledger_accounts b "
            "WHERE b.tenant_id = a.tenant_id AND b.code = :code)"
        ).bindparams(code=code, name=name, name_zh=name_zh, kind=kind)
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ledger_accounts WHERE code = '1305'"))
    op.drop_column('servicing_products', 'interest_due_days')
    op.drop_column('servicing_products', 'settlement_day')
    op.drop_column('loans', 'balance_product')
    op.drop_index('ix_loan_installments_amortising', table_name='loan_installments')
    op.drop_column('loan_installments', 'fee_amortised')
    op.drop_column('loan_installments', 'fee_amortisation')
