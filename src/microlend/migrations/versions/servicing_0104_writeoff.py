"""servicing: write-off requests with four eyes and the off-balance register of written-off loans (账销案存,
memo account 7201); the classification state of a loan (judgement, cure observation, restructuring); a bank's
bad-loan settings

Revision ID: servicing_0104_writeoff
Revises: servicing_0103_nonaccrual
Create Date: 2026-11-30 05:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0104_writeoff'
down_revision: str | Sequence[str] | None = 'servicing_0103_nonaccrual'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AMOUNTS = ('principal', 'interest', 'penalty', 'charged', 'against_allowance', 'shortfall', 'recovered_charged',
            'recovered_interest', 'recovered_penalty')


def upgrade() -> None:
    op.create_table('write_offs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason_code', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('documents', sa.Text(), nullable=False),
        sa.Column('loan_class', sa.String(length=20), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('requested_by', sa.String(length=100), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=False),
        sa.Column('written_off_on', sa.Date(), nullable=True),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _AMOUNTS],
        sa.Column('journal_entry_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_write_offs_loan_id_loans')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_write_offs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_write_offs'))
    )
    op.create_index('ix_write_offs_tenant_status', 'write_offs', ['tenant_id', 'status'], unique=False)
    op.create_index(op.f('ix_write_offs_loan_id'), 'write_offs', ['loan_id'], unique=False)
    op.create_table('loan_class_states',
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('judged_class', sa.String(length=20), nullable=True),
        sa.Column('judged_reason', sa.Text(), nullable=False),
        sa.Column('judged_by', sa.String(length=100), nullable=True),
        sa.Column('judged_on', sa.Date(), nullable=True),
        sa.Column('cured_on', sa.Date(), nullable=True),
        sa.Column('observe_until_day', sa.Integer(), nullable=True),
        sa.Column('restructured_on', sa.Date(), nullable=True),
        sa.Column('restructure_until_day', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_class_states_loan_id_loans')),
        sa.PrimaryKeyConstraint('loan_id', name=op.f('pk_loan_class_states'))
    )
    op.create_index(op.f('ix_loan_class_states_tenant_id'), 'loan_class_states', ['tenant_id'], unique=False)
    op.create_table('bad_loan_settings',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('writeoff_classes', sa.Text(), nullable=False),
        sa.Column('writeoff_reasons', sa.Text(), nullable=False),
        sa.Column('cure_months', sa.Integer(), nullable=False),
        sa.Column('cure_periods', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_bad_loan_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_bad_loan_settings'))
    )
    # every bank that has a chart of accounts gets the register's memo account
    op.execute(
        sa.text(
            "INSERT INTO ledger_accounts (tenant_id, code, name, name_zh, type) "
            "SELECT a.tenant_id, '7201', 'Written-off loans (off-balance register)', '已核销贷款（账销案存）', "
            "'off_balance' FROM ledger_accounts a WHERE a.code = '1001' AND NOT EXISTS (SELECT 1 FROM "
            "ledger_accounts b WHERE b.tenant_id = a.tenant_id AND b.code = '7201')"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ledger_accounts WHERE code = '7201'"))
    op.drop_table('bad_loan_settings')
    op.drop_index(op.f('ix_loan_class_states_tenant_id'), table_name='loan_class_states')
    op.drop_table('loan_class_states')
    op.drop_index(op.f('ix_write_offs_loan_id'), table_name='write_offs')
    op.drop_index('ix_write_offs_tenant_status', table_name='write_offs')
    op.drop_table('write_offs')
