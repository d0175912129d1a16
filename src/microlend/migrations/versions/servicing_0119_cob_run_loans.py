"""servicing: a close of business on a batch engine records the last loan id that existed when the date's close
began; its partitions close the loans up to it, and the date's closing transaction the loans paid out since

Revision ID: servicing_0119_cob_run_loans
Revises: servicing_0118_accrued_through
Create Date: 2026-12-01 06:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0119_cob_run_loans"
down_revision: str | Sequence[str] | None = "servicing_0118_accrued_through"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cob_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_loan_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cob_runs", schema=None) as batch_op:
        batch_op.drop_column("last_loan_id")
