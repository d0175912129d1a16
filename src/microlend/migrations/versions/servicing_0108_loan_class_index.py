"""servicing: loans indexed by their five-category class, so close of business finds the few loans carrying a
class other than normal without scanning the portfolio

Revision ID: servicing_0108_loan_class_index
Revises: servicing_0107_collections
Create Date: 2026-11-30 06:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "servicing_0108_loan_class_index"
down_revision: str | Sequence[str] | None = "servicing_0107_collections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_loans_tenant_class", "loans", ["tenant_id", "loan_class"])


def downgrade() -> None:
    op.drop_index("ix_loans_tenant_class", table_name="loans")
