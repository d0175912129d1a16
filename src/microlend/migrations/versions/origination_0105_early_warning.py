"""origination: early-warning alerts and their actions; visit tasks of officers

Revision ID: origination_0105_early_warning
Revises: origination_0104_decision_cpu
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "origination_0105_early_warning"
down_revision: str | Sequence[str] | None = "origination_0104_decision_cpu"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "early_warning_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("signal", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("open_key", sa.String(length=80), nullable=True),
        sa.Column("raised_on", sa.Date(), nullable=False),
        sa.Column("last_seen_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_early_warning_alerts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_warning_alerts")),
        sa.UniqueConstraint("tenant_id", "open_key", name="uq_early_warning_alerts_open_key"),
    )
    op.create_index("ix_early_warning_alerts_queue", "early_warning_alerts",
                    ["tenant_id", "status", "severity", "id"])
    op.create_index("ix_early_warning_alerts_customer", "early_warning_alerts", ["tenant_id", "customer_id"])
    op.create_table(
        "early_warning_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["early_warning_alerts.id"],
                                name=op.f("fk_early_warning_actions_alert_id_early_warning_alerts")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_early_warning_actions_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_warning_actions")),
    )
    op.create_index("ix_early_warning_actions_alert", "early_warning_actions", ["tenant_id", "alert_id", "id"])
    op.create_table(
        "visit_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("officer_user_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_visit_tasks_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_tasks")),
    )
    op.create_index("ix_visit_tasks_officer", "visit_tasks", ["tenant_id", "status", "officer_user_id", "due_on"])
    op.create_index("ix_visit_tasks_customer", "visit_tasks", ["tenant_id", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_visit_tasks_customer", table_name="visit_tasks")
    op.drop_index("ix_visit_tasks_officer", table_name="visit_tasks")
    op.drop_table("visit_tasks")
    op.drop_index("ix_early_warning_actions_alert", table_name="early_warning_actions")
    op.drop_table("early_warning_actions")
    op.drop_index("ix_early_warning_alerts_customer", table_name="early_warning_alerts")
    op.drop_index("ix_early_warning_alerts_queue", table_name="early_warning_alerts")
    op.drop_table("early_warning_alerts")
