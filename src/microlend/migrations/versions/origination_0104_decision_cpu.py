"""origination: the CPU time the deciding thread spent on an application's automated decision

Revision ID: origination_0104_decision_cpu
Revises: origination_0103_tax_fraction
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "origination_0104_decision_cpu"
down_revision: str | Sequence[str] | None = "origination_0103_tax_fraction"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN of a nullable column (no table copy under the applications' foreign keys)
    op.add_column("applications", sa.Column("decision_cpu_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("decision_cpu_ms")
