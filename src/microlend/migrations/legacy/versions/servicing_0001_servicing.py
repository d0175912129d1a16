"""servicing

Revision ID: servicing_0001
Revises: core_0001
Create Date: 2026-11-28 23:26:08.170043
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0001'
down_revision: str | Sequence[str] | None = 'core_0001'
branch_labels: str | Sequence[str] | None = ('servicing',)
depends_on: str | Sequence[str] | None = None


# The journal guards: journal rows can be neither edited nor deleted, and on PostgreSQL every entry's
# lines must balance at commit (a deferred constraint trigger).
PG_GUARDS = ["CREATE OR REPLACE FUNCTION journal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$\n       BEGIN RAISE EXCEPTION 'journal rows are immutable: post a reversing entry'; END $$", 'CREATE OR REPLACE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries\n       FOR EACH ROW EXECUTE FUNCTION journal_immutable()',
    'CREATE OR REPLACE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines\n       FOR EACH ROW EXECUTE FUNCTION journal_immutable()', "CREATE OR REPLACE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$\n       DECLARE d bigint; c bigint; td bigint; tc bigint;\n       BEGIN\n         SELECT COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) INTO d, c\n           FROM journal_lines WHERE entry_id = NEW.id;\n         SELECT total_debit, total_credit INTO td, tc FROM journal_entries WHERE id = NEW.id;\n         IF d <> c OR d <> td OR c <> tc THEN\n           RAISE EXCEPTION USING MESSAGE = 'journal entry ' || NEW.id || ' is unbalanced: debits ' || d\n             || ', credits ' || c;\n         END IF;\n         RETURN NULL;\n       END $$", 'DROP TRIGGER IF EXISTS journal_entry_balanced ON journal_entries',
    'CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT ON journal_entries\n       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced()']
SQLITE_GUARDS = ["CREATE TRIGGER IF NOT EXISTS journal_entries_no_update BEFORE UPDATE ON journal_entries\n       BEGIN SELECT RAISE(ABORT, 'journal entries are immutable: post a reversing entry'); END", "CREATE TRIGGER IF NOT EXISTS journal_entries_no_delete BEFORE DELETE ON journal_entries\n       BEGIN SELECT RAISE(ABORT, 'journal entries are immutable: post a reversing entry'); END", "CREATE TRIGGER IF NOT EXISTS journal_lines_no_update BEFORE UPDATE ON journal_lines\n       BEGIN SELECT RAISE(ABORT, 'journal lines are immutable: post a reversing entry'); END", "CREATE TRIGGER IF NOT EXISTS journal_lines_no_delete BEFORE DELETE ON journal_lines\n       BEGIN SELECT RAISE(ABORT, 'journal lines are immutable: post a reversing entry'); END"]


def upgrade() -> None:
    _create_cob_work()
    _create_loan_events()
    _create_cob_runs()
    _create_journal_entries()
    _create_ledger_accounts()
    _create_servicing_products()
    _create_credit_lines()
    _create_journal_lines()
    _create_loans()
    _create_loan_installments()
    _create_loan_repayments()
    dialect = op.get_bind().dialect.name
    for sql in PG_GUARDS if dialect == "postgresql" else SQLITE_GUARDS if dialect == "sqlite" else []:
        op.execute(sql)


def downgrade() -> None:
    _drop_loan_repayments()
    _drop_loan_installments()
    _drop_loans()
    _drop_journal_lines()
    _drop_credit_lines()
    _drop_servicing_products()
    _drop_ledger_accounts()
    _drop_journal_entries()
    _drop_cob_runs()
    _drop_loan_events()
    _drop_cob_work()


def _create_cob_work() -> None:
    op.create_table('cob_work',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('days_past_due', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=10), nullable=False),
        sa.Column('loan_class', sa.String(length=20), nullable=False),
        sa.Column('overdue_principal', sa.BigInteger(), nullable=False),
        sa.Column('penalty', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'loan_id', name=op.f('pk_cob_work'))
    )


def _create_loan_events() -> None:
    op.create_table('loan_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('data', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_events'))
    )
    with op.batch_alter_table('loan_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_events_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_loan_events_tenant_date', ['tenant_id', 'business_date'], unique=False)


def _create_cob_runs() -> None:
    op.create_table('cob_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('loans_active', sa.Integer(), nullable=False),
        sa.Column('interest_accrued', sa.BigInteger(), nullable=False),
        sa.Column('penalty_accrued', sa.BigInteger(), nullable=False),
        sa.Column('newly_overdue', sa.Integer(), nullable=False),
        sa.Column('bucket_changes', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_cob_runs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cob_runs')),
        sa.UniqueConstraint('tenant_id', 'business_date', name='uq_cob_runs_tenant_date')
    )


def _create_journal_entries() -> None:
    op.create_table('journal_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=50), nullable=False),
        sa.Column('memo', sa.Text(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('reverses_id', sa.Integer(), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('total_debit', sa.BigInteger(), nullable=False),
        sa.Column('total_credit', sa.BigInteger(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('total_debit = total_credit', name=op.f('ck_journal_entries_balanced')),
        sa.CheckConstraint('total_debit > 0', name=op.f('ck_journal_entries_not_empty')),
        sa.ForeignKeyConstraint(['reverses_id'], ['journal_entries.id'], name=op.f('fk_journal_entries_reverses_id_journal_entries')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_journal_entries_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_journal_entries_tenant_date', ['tenant_id', 'business_date'], unique=False)


def _create_ledger_accounts() -> None:
    op.create_table('ledger_accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=10), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_zh', sa.String(length=100), nullable=False),
        sa.Column('type', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_accounts_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
        sa.UniqueConstraint('tenant_id', 'code', name='uq_ledger_accounts_tenant_code')
    )


def _create_servicing_products() -> None:
    op.create_table('servicing_products',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('name_zh', sa.String(length=200), nullable=False),
        sa.Column('method', sa.String(length=30), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('min_amount', sa.BigInteger(), nullable=False),
        sa.Column('max_amount', sa.BigInteger(), nullable=False),
        sa.Column('min_term_months', sa.Integer(), nullable=False),
        sa.Column('max_term_months', sa.Integer(), nullable=False),
        sa.Column('annual_rate', sa.String(length=40), nullable=False),
        sa.Column('min_rate', sa.String(length=40), nullable=False),
        sa.Column('max_rate', sa.String(length=40), nullable=False),
        sa.Column('penalty_multiplier', sa.String(length=40), nullable=False),
        sa.Column('grace_days', sa.Integer(), nullable=False),
        sa.Column('upfront_fee_rate', sa.String(length=40), nullable=False),
        sa.Column('fee_mode', sa.String(length=30), nullable=False),
        sa.Column('allocation_order', sa.Text(), nullable=False),
        sa.Column('early_repayment_allowed', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_servicing_products_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_servicing_products')),
        sa.UniqueConstraint('tenant_id', 'code', name='uq_servicing_products_tenant_code')
    )
    with op.batch_alter_table('servicing_products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_servicing_products_tenant_id'), ['tenant_id'], unique=False)


def _create_credit_lines() -> None:
    op.create_table('credit_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('limit', sa.BigInteger(), nullable=False),
        sa.Column('annual_rate', sa.String(length=40), nullable=False),
        sa.Column('opened_on', sa.Date(), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['servicing_products.id'], name=op.f('fk_credit_lines_product_id_servicing_products')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_lines_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_lines'))
    )
    with op.batch_alter_table('credit_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_lines_tenant_id'), ['tenant_id'], unique=False)


def _create_journal_lines() -> None:
    op.create_table('journal_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('account_code', sa.String(length=10), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('debit', sa.BigInteger(), nullable=False),
        sa.Column('credit', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0)', name=op.f('ck_journal_lines_one_sided')),
        sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_lines_entry_id_journal_entries')),
        sa.ForeignKeyConstraint(['tenant_id', 'account_code'], ['ledger_accounts.tenant_id', 'ledger_accounts.code'], name='fk_journal_lines_account'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_lines'))
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_lines_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_journal_lines_tenant_account', ['tenant_id', 'account_code'], unique=False)


def _create_loans() -> None:
    op.create_table('loans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('credit_line_id', sa.Integer(), nullable=True),
        sa.Column('application_id', sa.Integer(), nullable=True),
        sa.Column('method', sa.String(length=30), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('principal', sa.BigInteger(), nullable=False),
        sa.Column('annual_rate', sa.String(length=40), nullable=False),
        sa.Column('rate_e8', sa.BigInteger(), nullable=False),
        sa.Column('penalty_rate_e8', sa.BigInteger(), nullable=False),
        sa.Column('grace_days', sa.Integer(), nullable=False),
        sa.Column('term_months', sa.Integer(), nullable=False),
        sa.Column('upfront_fee', sa.BigInteger(), nullable=False),
        sa.Column('fee_mode', sa.String(length=30), nullable=False),
        sa.Column('allocation_order', sa.Text(), nullable=False),
        sa.Column('disbursed_on', sa.Date(), nullable=False),
        sa.Column('maturity_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('days_past_due', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=10), nullable=False),
        sa.Column('loan_class', sa.String(length=20), nullable=False),
        sa.Column('penalty_accrued', sa.BigInteger(), nullable=False),
        sa.Column('penalty_paid', sa.BigInteger(), nullable=False),
        sa.Column('credit_balance', sa.BigInteger(), nullable=False),
        sa.Column('closed_on', sa.Date(), nullable=True),
        sa.Column('disbursement_key', sa.String(length=255), nullable=True),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('credit_balance >= 0', name=op.f('ck_loans_credit_balance_not_negative')),
        sa.CheckConstraint('penalty_accrued >= penalty_paid', name=op.f('ck_loans_penalty_not_overpaid')),
        sa.ForeignKeyConstraint(['credit_line_id'], ['credit_lines.id'], name=op.f('fk_loans_credit_line_id_credit_lines')),
        sa.ForeignKeyConstraint(['product_id'], ['servicing_products.id'], name=op.f('fk_loans_product_id_servicing_products')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loans_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loans')),
        sa.UniqueConstraint('tenant_id', 'disbursement_key', name='uq_loans_tenant_disbursement_key'),
        postgresql_with={'fillfactor': 80}
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_credit_line_id'), ['credit_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loans_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_loans_tenant_dpd', ['tenant_id', 'days_past_due'], unique=False)
        batch_op.create_index('ix_loans_tenant_status_method', ['tenant_id', 'status', 'method'], unique=False)


def _create_loan_installments() -> None:
    op.create_table('loan_installments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=False),
        sa.Column('start_day', sa.Integer(), nullable=False),
        sa.Column('due_day', sa.Integer(), nullable=False),
        sa.Column('principal', sa.BigInteger(), nullable=False),
        sa.Column('interest', sa.BigInteger(), nullable=False),
        sa.Column('fee', sa.BigInteger(), nullable=False),
        sa.Column('principal_paid', sa.BigInteger(), nullable=False),
        sa.Column('interest_paid', sa.BigInteger(), nullable=False),
        sa.Column('fee_paid', sa.BigInteger(), nullable=False),
        sa.Column('interest_accrued', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('paid_on', sa.Date(), nullable=True),
        sa.CheckConstraint('fee_paid >= 0 AND fee_paid <= fee', name=op.f('ck_loan_installments_fee_paid_in_range')),
        sa.CheckConstraint('interest_accrued >= 0 AND interest_accrued <= interest', name=op.f('ck_loan_installments_accrued_in_range')),
        sa.CheckConstraint('interest_paid >= 0 AND interest_paid <= interest', name=op.f('ck_loan_installments_interest_paid_in_range')),
        sa.CheckConstraint('principal_paid >= 0 AND principal_paid <= principal', name=op.f('ck_loan_installments_principal_paid_in_range')),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_installments_loan_id_loans')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_installments')),
        sa.UniqueConstraint('loan_id', 'number', name='uq_loan_installments_loan_number'),
        postgresql_with={'fillfactor': 80}
    )
    with op.batch_alter_table('loan_installments', schema=None) as batch_op:
        batch_op.create_index('ix_loan_installments_accruing', ['tenant_id', 'start_day'], unique=False, sqlite_where=sa.text('interest_accrued < interest'))
        batch_op.create_index(batch_op.f('ix_loan_installments_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_loan_installments_overdue', ['tenant_id', 'loan_id'], unique=False, sqlite_where=sa.text("status = 'overdue'"), postgresql_where=sa.text("status = 'overdue'"))
        batch_op.create_index('ix_loan_installments_pending_due', ['tenant_id', 'due_day'], unique=False, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))


def _create_loan_repayments() -> None:
    op.create_table('loan_repayments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('value_date', sa.Date(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('allocation', sa.Text(), nullable=False),
        sa.Column('credit', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('journal_entry_id', sa.Integer(), nullable=False),
        sa.Column('reversal_entry_id', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_repayments_loan_id_loans')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_repayments')),
        sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_loan_repayments_tenant_key')
    )
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.create_index('ix_loan_repayments_loan_seq', ['loan_id', 'id'], unique=False)


def _drop_loan_repayments() -> None:
    with op.batch_alter_table('loan_repayments', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_repayments_loan_seq')
    op.drop_table('loan_repayments')


def _drop_loan_installments() -> None:
    with op.batch_alter_table('loan_installments', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_installments_pending_due', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_loan_installments_overdue', sqlite_where=sa.text("status = 'overdue'"), postgresql_where=sa.text("status = 'overdue'"))
        batch_op.drop_index(batch_op.f('ix_loan_installments_loan_id'))
        batch_op.drop_index('ix_loan_installments_accruing', sqlite_where=sa.text('interest_accrued < interest'))
    op.drop_table('loan_installments')


def _drop_loans() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_tenant_status_method')
        batch_op.drop_index('ix_loans_tenant_dpd')
        batch_op.drop_index(batch_op.f('ix_loans_customer_id'))
        batch_op.drop_index(batch_op.f('ix_loans_credit_line_id'))
    op.drop_table('loans')


def _drop_journal_lines() -> None:
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_lines_tenant_account')
        batch_op.drop_index(batch_op.f('ix_journal_lines_entry_id'))
    op.drop_table('journal_lines')


def _drop_credit_lines() -> None:
    with op.batch_alter_table('credit_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_lines_tenant_id'))
    op.drop_table('credit_lines')


def _drop_servicing_products() -> None:
    with op.batch_alter_table('servicing_products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_servicing_products_tenant_id'))
    op.drop_table('servicing_products')


def _drop_ledger_accounts() -> None:
    op.drop_table('ledger_accounts')


def _drop_journal_entries() -> None:
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_entries_tenant_date')
        batch_op.drop_index(batch_op.f('ix_journal_entries_loan_id'))
    op.drop_table('journal_entries')


def _drop_cob_runs() -> None:
    op.drop_table('cob_runs')


def _drop_loan_events() -> None:
    with op.batch_alter_table('loan_events', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_events_tenant_date')
        batch_op.drop_index(batch_op.f('ix_loan_events_loan_id'))
    op.drop_table('loan_events')


def _drop_cob_work() -> None:
    op.drop_table('cob_work')
