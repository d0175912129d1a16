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

_KEPT = ("id", "tenant_id", "subject_kind", "subject_id", "customer_id", "month", "as_of", "score", "band", "factors",
         "scorecard_version", "created_at")
_COMPACT = ("run_id", "current_dpd", "factor_bins", "factor_values")


def _columns(*, compact: bool) -> list[sa.Column[object]]:
    """behaviour_scores' columns before (or after) this revision: rows kept before the runs keep their version,
    date and JSON breakdown; compact rows name their run instead."""
    per_row = not compact
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=not per_row),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=2), nullable=False),
        sa.Column("factors", sa.Text(), nullable=not per_row),
        sa.Column("scorecard_version", sa.String(length=20), nullable=not per_row),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=not per_row),
        *((sa.Column("run_id", sa.Integer(), nullable=True), sa.Column("current_dpd", sa.Integer(), nullable=True),
           sa.Column("factor_bins", sa.String(length=40), nullable=True),
           sa.Column("factor_values", sa.String(length=200), nullable=True)) if compact else ()),
    ]


def _rebuild_on_sqlite(*, compact: bool) -> None:
    """SQLite cannot change a column's NOT NULL in place: the table is rebuilt with its constraints in one fixed
    order (whichever chain of revisions built the database) and its rows copied."""
    op.create_table(
        "behaviour_scores_rebuilt",
        *_columns(compact=compact),
        sa.PrimaryKeyConstraint("id", name="pk_behaviour_scores"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_behaviour_scores_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "subject_kind", "subject_id", "month",
                            name="uq_behaviour_scores_subject_month"),
    )
    names = ", ".join(_KEPT)
    op.execute(f"INSERT INTO behaviour_scores_rebuilt ({names}) SELECT {names} FROM behaviour_scores")
    op.drop_index("ix_behaviour_scores_tenant_month", table_name="behaviour_scores")
    op.drop_table("behaviour_scores")
    op.rename_table("behaviour_scores_rebuilt", "behaviour_scores")
    op.create_index("ix_behaviour_scores_tenant_month", "behaviour_scores", ["tenant_id", "month"], unique=False)


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
    op.create_index("ix_behaviour_score_runs_tenant_month", "behaviour_score_runs", ["tenant_id", "month"],
                    unique=False)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(compact=True)
        return
    for column in _columns(compact=True):
        if column.name in _COMPACT:
            op.add_column("behaviour_scores", column)
    for name, kind in (("as_of", sa.Date()), ("factors", sa.Text()), ("scorecard_version", sa.String(length=20)),
                       ("created_at", sa.DateTime(timezone=True))):
        op.alter_column("behaviour_scores", name, existing_type=kind, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM behaviour_scores WHERE run_id IS NOT NULL")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(compact=False)
    else:
        for name, kind in (("as_of", sa.Date()), ("factors", sa.Text()),
                           ("scorecard_version", sa.String(length=20)), ("created_at", sa.DateTime(timezone=True))):
            op.alter_column("behaviour_scores", name, existing_type=kind, nullable=False)
        for name in reversed(_COMPACT):
            op.drop_column("behaviour_scores", name)
    op.drop_index("ix_behaviour_score_runs_tenant_month", table_name="behaviour_score_runs")
    op.drop_table("behaviour_score_runs")
