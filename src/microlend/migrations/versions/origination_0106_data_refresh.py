"""origination: a bank's settings for the periodic re-pulls of its borrowers' external data

Revision ID: origination_0106_data_refresh
Revises: origination_0105_early_warning
Create Date: 2026-11-30 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "origination_0106_data_refresh"
down_revision: str | Sequence[str] | None = "origination_0105_early_warning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_refresh_settings",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("max_calls", sa.Integer(), nullable=False),
        sa.Column("max_cost", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_data_refresh_settings_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_data_refresh_settings")),
    )


def downgrade() -> None:
    op.drop_table("data_refresh_settings")
