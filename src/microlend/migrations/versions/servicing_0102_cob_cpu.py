"""servicing: the CPU time each close of business took

Revision ID: servicing_0102_cob_cpu
Revises: servicing_0101_booking_approvals
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0102_cob_cpu"
down_revision: str | Sequence[str] | None = "servicing_0101_booking_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cob_runs", sa.Column("cpu_ms", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("cob_runs", schema=None) as batch_op:
        batch_op.drop_column("cpu_ms")
