"""decisioning: behaviour scores without a per-row foreign key to their tenant. A month's scores of a whole book are
written at once (COPY on PostgreSQL) by the scoring run, which stamps its own tenant, and the run's row
(``behaviour_score_runs``) keeps the tenant's foreign key: the per-row check took about as long as writing the
rows (9 s of 19 s for a million on PostgreSQL), as for loan accruals and loan provisions

Revision ID: decisioning_0106_bulk_scores
Revises: decisioning_0105_compact_scores
Create Date: 2026-12-01 16:35:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "decisioning_0106_bulk_scores"
down_revision: str | Sequence[str] | None = "decisioning_0105_compact_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("behaviour_scores", schema=None) as batch_op:
        batch_op.drop_constraint("fk_behaviour_scores_tenant_id_tenants", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("behaviour_scores", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_behaviour_scores_tenant_id_tenants", "tenants", ["tenant_id"], ["id"])
