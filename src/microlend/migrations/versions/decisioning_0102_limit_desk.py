"""decisioning: monthly behaviour scores, the limit desk's recommendation and note, authority by amount

Revision ID: decisioning_0102_limit_desk
Revises: decisioning_0101_governance
Create Date: 2026-11-30 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "decisioning_0102_limit_desk"
down_revision: str | Sequence[str] | None = "decisioning_0101_governance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "behaviour_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=2), nullable=False),
        sa.Column("factors", sa.Text(), nullable=False),
        sa.Column("scorecard_version", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_behaviour_scores_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behaviour_scores")),
        sa.UniqueConstraint("tenant_id", "subject_kind", "subject_id", "month",
                            name="uq_behaviour_scores_subject_month"),
    )
    with op.batch_alter_table("behaviour_scores", schema=None) as batch_op:
        batch_op.create_index("ix_behaviour_scores_tenant_month", ["tenant_id", "month"], unique=False)
    op.create_table(
        "limit_authority",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("role_limits", sa.Text(), nullable=False),
        sa.Column("automatic_limit", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_limit_authority_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_limit_authority")),
    )
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recommendation", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("recommended_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("recommended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("officer_note", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("decision_note", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.drop_column("decision_note")
        batch_op.drop_column("officer_note")
        batch_op.drop_column("recommended_at")
        batch_op.drop_column("recommended_by")
        batch_op.drop_column("recommendation")
    op.drop_table("limit_authority")
    with op.batch_alter_table("behaviour_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_behaviour_scores_tenant_month")
    op.drop_table("behaviour_scores")
