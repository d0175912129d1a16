"""decisioning: a shadow slot beside the split challenger, and each policy version's environment

Revision ID: decisioning_0102_shadow_envs
Revises: decisioning_0101_governance
Create Date: 2026-11-30 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "decisioning_0102_shadow_envs"
down_revision: str | Sequence[str] | None = "decisioning_0101_governance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decision_setups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shadow_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("shadow_started_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("environment", sa.String(length=20), nullable=False, server_default="draft")
        )
    # a shadow run that held the challenger's slot moves to the shadow slot
    op.execute(
        "UPDATE decision_setups SET shadow_hash = challenger_hash, shadow_started_at = challenger_started_at, "
        "challenger_hash = NULL, challenger_started_at = NULL, challenger_share_bp = 0, challenger_shadow = false "
        "WHERE challenger_shadow = true AND challenger_hash IS NOT NULL"
    )
    op.execute("UPDATE policy_versions SET environment = 'production' WHERE status IN ('published', 'retired')")
    op.execute("UPDATE policy_versions SET environment = 'test' WHERE status = 'submitted'")


def downgrade() -> None:
    op.execute(
        "UPDATE decision_setups SET challenger_hash = shadow_hash, challenger_started_at = shadow_started_at, "
        "challenger_share_bp = 0, challenger_shadow = true WHERE shadow_hash IS NOT NULL AND challenger_hash IS NULL"
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_column("environment")
    with op.batch_alter_table("decision_setups", schema=None) as batch_op:
        batch_op.drop_column("shadow_started_at")
        batch_op.drop_column("shadow_hash")
