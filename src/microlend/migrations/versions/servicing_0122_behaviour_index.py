"""servicing: ``ix_loan_installments_behaviour`` (tenant, loan, due day, paid date, principal), a covering index of
what the monthly behaviour score and the early-warning scan read of every instalment of the book: they read it in
loan order without the installments' wide rows (on SQLite about half the time of the whole-book read, on
PostgreSQL an index-only scan). A close of business's nightly accrual writes name none of its columns

Revision ID: servicing_0122_behaviour_index
Revises: servicing_0121_balance_products
Create Date: 2026-12-01 16:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "servicing_0122_behaviour_index"
down_revision: str | Sequence[str] | None = "servicing_0121_balance_products"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loan_installments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loan_installments_behaviour", ["tenant_id", "loan_id", "due_day", "paid_on", "principal"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("loan_installments", schema=None) as batch_op:
        batch_op.drop_index("ix_loan_installments_behaviour")
