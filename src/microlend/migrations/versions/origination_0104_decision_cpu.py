"""origination: the CPU time of an application's automated decision; a bank's unit-cost assumptions

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
    op.create_table(
        "unit_cost_settings",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("cpu_hour_cost", sa.BigInteger(), nullable=False),
        sa.Column("staff_hour_cost", sa.BigInteger(), nullable=False),
        sa.Column("recommend_minutes", sa.Integer(), nullable=False),
        sa.Column("decide_minutes", sa.Integer(), nullable=False),
        sa.Column("field_visit_minutes", sa.Integer(), nullable=False),
        sa.Column("reference_per_loan", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_unit_cost_settings_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_unit_cost_settings")),
    )


def downgrade() -> None:
    op.drop_table("unit_cost_settings")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("decision_cpu_ms")
