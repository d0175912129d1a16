"""decisioning: submission evidence, promote and roll-back requests, the challenger's start

Revision ID: decisioning_0101_governance
Revises: decisioning_0100
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "decisioning_0101_governance"
down_revision: str | Sequence[str] | None = "decisioning_0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("policy_version_id", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("champion_hash", sa.String(length=64), nullable=True),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("golden", sa.Text(), nullable=False),
        sa.Column("simulation", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_policy_submissions_tenant_id_tenants")),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_versions.id"],
            name=op.f("fk_policy_submissions_policy_version_id_policy_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_submissions")),
    )
    with op.batch_alter_table("policy_submissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_submissions_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_policy_submissions_policy_version_id"), ["policy_version_id"], unique=False
        )
    op.create_table(
        "policy_change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_policy_change_requests_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_change_requests")),
    )
    with op.batch_alter_table("policy_change_requests", schema=None) as batch_op:
        batch_op.create_index("ix_policy_change_requests_tenant_status", ["tenant_id", "status"], unique=False)
    with op.batch_alter_table("decision_setups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("challenger_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decision_setups", schema=None) as batch_op:
        batch_op.drop_column("challenger_started_at")
    with op.batch_alter_table("policy_change_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_change_requests_tenant_status")
    op.drop_table("policy_change_requests")
    with op.batch_alter_table("policy_submissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_submissions_policy_version_id"))
        batch_op.drop_index(batch_op.f("ix_policy_submissions_tenant_id"))
    op.drop_table("policy_submissions")
