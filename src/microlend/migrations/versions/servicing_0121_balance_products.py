"""servicing: the revolving drawdowns' balance products (积数) in a narrow table of their own,
``revolving_balances`` (a loan without a row: zero), instead of ``loans.balance_product``: close of business
updates a tenth of the loans each night, which were on nearly every page of the wide loans table (a page image
each in the write-ahead log after a checkpoint); their own rows, with room on their pages (fillfactor 50), are
updated in place

Revision ID: servicing_0121_balance_products
Revises: servicing_0120_close_indexes
Create Date: 2026-12-01 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0121_balance_products"
down_revision: str | Sequence[str] | None = "servicing_0120_close_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revolving_balances",
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("balance_product", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_revolving_balances_loan_id_loans")),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_revolving_balances")),
        postgresql_with={"fillfactor": 50},
    )
    op.execute(
        "INSERT INTO revolving_balances (loan_id, tenant_id, balance_product) "
        "SELECT id, tenant_id, balance_product FROM loans WHERE balance_product <> 0"
    )
    # a plain DROP COLUMN (no table copy under the loans' foreign keys on SQLite)
    op.drop_column("loans", "balance_product")


def downgrade() -> None:
    op.add_column("loans", sa.Column("balance_product", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.execute(
        "UPDATE loans SET balance_product = (SELECT b.balance_product FROM revolving_balances b "
        "WHERE b.loan_id = loans.id) WHERE id IN (SELECT loan_id FROM revolving_balances)"
    )
    op.drop_table("revolving_balances")
