"""servicing: a bank's close of business runs on a batch engine when its settings name one (local or spark), in
the database otherwise

Revision ID: servicing_0117_cob_engine
Revises: servicing_0116_cob_claims
Create Date: 2026-11-30 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0117_cob_engine"
down_revision: str | Sequence[str] | None = "servicing_0116_cob_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("servicing_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cob_engine", sa.String(length=10), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("servicing_settings", schema=None) as batch_op:
        batch_op.drop_column("cob_engine")
