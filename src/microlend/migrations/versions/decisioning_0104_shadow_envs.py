"""decisioning: a shadow slot beside the split challenger, and each policy version's environment

Revision ID: decisioning_0104_shadow_envs
Revises: decisioning_0103_reason_codes
Create Date: 2026-11-30 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "decisioning_0104_shadow_envs"
down_revision: str | Sequence[str] | None = "decisioning_0103_reason_codes"
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
    # a shadow run that holds the challenger's slot (challenger_shadow) stays there and is read as the shadow
    op.execute("UPDATE policy_versions SET environment = 'production' WHERE status IN ('published', 'retired')")
    op.execute("UPDATE policy_versions SET environment = 'test' WHERE status = 'submitted'")


def downgrade() -> None:
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_column("environment")
    with op.batch_alter_table("decision_setups", schema=None) as batch_op:
        batch_op.drop_column("shadow_started_at")
        batch_op.drop_column("shadow_hash")
