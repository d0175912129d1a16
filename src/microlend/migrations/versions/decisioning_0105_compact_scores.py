"""decisioning: behaviour scores kept compactly, the scorecard's version and definition once per scoring run

Revision ID: decisioning_0105_compact_scores
Revises: decisioning_0104_shadow_envs
Create Date: 2026-11-30 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "decisioning_0105_compact_scores"
down_revision: str | Sequence[str] | None = "decisioning_0104_shadow_envs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "behaviour_score_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("scorecard_version", sa.String(length=20), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_behaviour_score_runs_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behaviour_score_runs")),
    )
    with op.batch_alter_table("behaviour_score_runs", schema=None) as batch_op:
        batch_op.create_index("ix_behaviour_score_runs_tenant_month", ["tenant_id", "month"], unique=False)
    # rows kept before keep their own version, date and JSON breakdown; new rows name their run instead
    with op.batch_alter_table("behaviour_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("current_dpd", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("factor_bins", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("factor_values", sa.String(length=200), nullable=True))
        batch_op.alter_column("as_of", existing_type=sa.Date(), nullable=True)
        batch_op.alter_column("factors", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("scorecard_version", existing_type=sa.String(length=20), nullable=True)
        batch_op.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM behaviour_scores WHERE run_id IS NOT NULL")
    with op.batch_alter_table("behaviour_scores", schema=None) as batch_op:
        batch_op.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("scorecard_version", existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column("factors", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("as_of", existing_type=sa.Date(), nullable=False)
        batch_op.drop_column("factor_values")
        batch_op.drop_column("factor_bins")
        batch_op.drop_column("current_dpd")
        batch_op.drop_column("run_id")
    with op.batch_alter_table("behaviour_score_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_behaviour_score_runs_tenant_month")
    op.drop_table("behaviour_score_runs")
