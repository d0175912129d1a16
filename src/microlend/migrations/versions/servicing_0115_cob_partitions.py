"""servicing: the partitions of a close of business run on a batch engine, one row per loan-id range applied, so
a rerun of the date skips what is done and never applies a partition twice

Revision ID: servicing_0115_cob_partitions
Revises: servicing_0114_lines_by_entry
Create Date: 2026-11-30 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0115_cob_partitions"
down_revision: str | Sequence[str] | None = "servicing_0114_lines_by_entry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cob_partitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("first_loan_id", sa.Integer(), nullable=False),
        sa.Column("last_loan_id", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=20), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_cob_partitions_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cob_partitions")),
        sa.UniqueConstraint("tenant_id", "business_date", "first_loan_id", name="uq_cob_partitions_range"),
    )


def downgrade() -> None:
    op.drop_table("cob_partitions")
