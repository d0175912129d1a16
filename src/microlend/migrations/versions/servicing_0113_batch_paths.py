"""servicing: the paths of the portfolio-wide batches: loans holding a credit balance indexed (close of business
applies credit without reading every loan), and a provisioning run's per-loan rows written without a per-row
foreign-key check (the run and its rows are written in one transaction; the run's totals come from its rows)

Revision ID: servicing_0113_batch_paths
Revises: servicing_0112_loan_accruals
Create Date: 2026-11-30 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0113_batch_paths"
down_revision: str | Sequence[str] | None = "servicing_0112_loan_accruals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CREDIT = sa.text("credit_balance > 0")


def upgrade() -> None:
    op.create_index("ix_loans_tenant_credit", "loans", ["tenant_id"], sqlite_where=_CREDIT, postgresql_where=_CREDIT)
    with op.batch_alter_table("loan_provisions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_loan_provisions_run_id_provision_runs", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("loan_provisions", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_loan_provisions_run_id_provision_runs", "provision_runs", ["run_id"], ["id"])
    op.drop_index("ix_loans_tenant_credit", table_name="loans")
