"""servicing: the loan-level sub-ledger of close of business (loan_accruals), append-only

Revision ID: servicing_0112_loan_accruals
Revises: servicing_0111_case_attachments
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0112_loan_accruals"
down_revision: str | Sequence[str] | None = "servicing_0111_case_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# append-only, like the journal (the same statements as the table's guards in microlend.servicing.tables)
SQLITE_GUARDS = [
    """CREATE TRIGGER IF NOT EXISTS loan_accruals_no_update BEFORE UPDATE ON loan_accruals
       BEGIN SELECT RAISE(ABORT, 'sub-ledger rows are immutable: post a reversing entry'); END""",
    """CREATE TRIGGER IF NOT EXISTS loan_accruals_no_delete BEFORE DELETE ON loan_accruals
       BEGIN SELECT RAISE(ABORT, 'sub-ledger rows are immutable: post a reversing entry'); END""",
]
PG_GUARDS = [
    """CREATE OR REPLACE FUNCTION journal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'journal rows are immutable: post a reversing entry'; END $$""",
    """CREATE OR REPLACE TRIGGER loan_accruals_immutable BEFORE UPDATE OR DELETE ON loan_accruals
       FOR EACH ROW EXECUTE FUNCTION journal_immutable()""",
]


def upgrade() -> None:
    op.create_table(
        "loan_accruals",
        sa.Column("entry_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("leg", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("loan_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("debit_account", sa.String(length=10), nullable=False),
        sa.Column("credit_account", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_loan_accruals_positive")),
        sa.PrimaryKeyConstraint("entry_id", "leg", "loan_id", name=op.f("pk_loan_accruals")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_loan_accruals_loan", "loan_accruals", ["loan_id", "business_date"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in PG_GUARDS if dialect == "postgresql" else SQLITE_GUARDS if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS loan_accruals_immutable ON loan_accruals")
    else:
        op.execute("DROP TRIGGER IF EXISTS loan_accruals_no_update")
        op.execute("DROP TRIGGER IF EXISTS loan_accruals_no_delete")
    op.drop_index("ix_loan_accruals_loan", table_name="loan_accruals")
    op.drop_table("loan_accruals")
