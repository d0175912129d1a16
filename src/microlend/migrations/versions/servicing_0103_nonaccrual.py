"""servicing: non-accrual (停止计息) with off-balance memo accounts; a bank's non-accrual threshold and policy;
expected-credit-loss provisioning runs with per-loan provisions and the loan-loss allowance

Revision ID: servicing_0103_nonaccrual
Revises: servicing_0102_cob_cpu
Create Date: 2026-11-30 03:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0103_nonaccrual'
down_revision: str | Sequence[str] | None = 'servicing_0102_cob_cpu'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_ACCOUNTS = (
    ('1304', 'Loan-loss allowance', '贷款损失准备', 'contra_asset'),
    ('6702', 'Credit impairment loss', '信用减值损失', 'expense'),
    ('7101', 'Off-balance interest receivable', '表外应收利息', 'off_balance'),
    ('7102', 'Off-balance penalty receivable', '表外应收罚息', 'off_balance'),
    ('7999', 'Off-balance contra', '表外科目对转', 'off_balance'),
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
    for column, default in (('pd_stage1', '0.02'), ('pd_stage2', '0.2'), ('pd_stage3', '1'), ('lgd', '0.45')):
        op.add_column('servicing_settings', sa.Column(column, sa.String(length=40), server_default=default,
                                                      nullable=False))
    for code, name, name_zh, kind in _NEW_ACCOUNTS:  # every bank that has a chart of accounts gets them
        op.execute(
            sa.text(
                "INSERT INTO ledger_accounts (tenant_id, code, name, name_zh, type) "
                "SELECT a.tenant_id, :code, :name, :name_zh, :kind FROM ledger_accounts a "
                "WHERE a.code = '1001' AND NOT EXISTS (SELECT 1 FROM ledger_accounts b "
                "WHERE b.tenant_id = a.tenant_id AND b.code = :code)"
            ).bindparams(code=code, name=name, name_zh=name_zh, kind=kind)
        )
    op.create_table('provision_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('loans', sa.Integer(), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.Column('change', sa.BigInteger(), nullable=False),
        sa.Column('parameters', sa.Text(), nullable=False),
        sa.Column('journal_entry_id', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_provision_runs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provision_runs'))
    )
    op.create_index('ix_provision_runs_tenant_date', 'provision_runs', ['tenant_id', 'as_of'], unique=False)
    op.create_table('loan_provisions',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.Integer(), nullable=False),
        sa.Column('loan_class', sa.String(length=20), nullable=False),
        sa.Column('principal', sa.BigInteger(), nullable=False),
        sa.Column('ead', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['provision_runs.id'], name=op.f('fk_loan_provisions_run_id_provision_runs')),
        sa.PrimaryKeyConstraint('run_id', 'loan_id', name=op.f('pk_loan_provisions'))
    )


def downgrade() -> None:
    op.drop_table('loan_provisions')
    op.drop_index('ix_provision_runs_tenant_date', table_name='provision_runs')
    op.drop_table('provision_runs')
    op.execute(sa.text("DELETE FROM ledger_accounts WHERE code IN ('1304', '6702', '7101', '7102', '7999')"))
    with op.batch_alter_table('servicing_settings', schema=None) as batch_op:
        for column in ('lgd', 'pd_stage3', 'pd_stage2', 'pd_stage1'):
            batch_op.drop_column(column)
        batch_op.drop_column('nonaccrual_policy')
        batch_op.drop_column('nonaccrual_on_npl')
        batch_op.drop_column('nonaccrual_days')
    op.drop_index('ix_loans_tenant_accrual', table_name='loans')
    op.drop_column('loans', 'penalty_suspended')
    op.drop_column('loans', 'interest_suspended')
    op.drop_column('loans', 'accrual_status')
