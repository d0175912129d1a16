"""servicing: indexes a close of business no longer writes: ``ix_loans_tenant_dpd`` (days past due changes for every
overdue loan every night, so no loan update of the close could stay on its page, a HOT update, while an index
named the column: each wrote all the loans' indexes) and ``ix_loan_installments_loan_id`` (the unique (loan_id,
number) index leads with the loan and serves the same lookups; each installment update that moves the row wrote
both)

Revision ID: servicing_0120_close_indexes
Revises: servicing_0119_cob_run_loans
Create Date: 2026-12-01 09:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "servicing_0120_close_indexes"
down_revision: str | Sequence[str] | None = "servicing_0119_cob_run_loans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index("ix_loans_tenant_dpd")
    with op.batch_alter_table("loan_installments", schema=None) as batch_op:
        batch_op.drop_index("ix_loan_installments_loan_id")


def downgrade() -> None:
    with op.batch_alter_table("loan_installments", schema=None) as batch_op:
        batch_op.create_index("ix_loan_installments_loan_id", ["loan_id"], unique=False)
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index("ix_loans_tenant_dpd", ["tenant_id", "days_past_due"], unique=False)
