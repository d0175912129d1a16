"""servicing: a close of business partition is claimed by a worker under a lease before it is applied, so workers
running the same date share its partitions and a dead worker's claim is taken over once its lease expires

Revision ID: servicing_0116_cob_claims
Revises: servicing_0115_cob_partitions
Create Date: 2026-11-30 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0116_cob_claims"
down_revision: str | Sequence[str] | None = "servicing_0115_cob_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cob_partitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=10), nullable=False, server_default="done"))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM cob_partitions WHERE status <> 'done'")
    with op.batch_alter_table("cob_partitions", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("status")
