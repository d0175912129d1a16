"""data: external data providers per bank, and every call made to them

Revision ID: data_0101_provider_gateway
Revises: data_0100
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "data_0101_provider_gateway"
down_revision: str | Sequence[str] | None = "data_0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_provider_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("api_key", sa.Text(), nullable=True),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("breaker_failures", sa.Integer(), nullable=False),
        sa.Column("breaker_seconds", sa.Integer(), nullable=False),
        sa.Column("cache_ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("cost_per_call", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_data_provider_settings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_provider_settings")),
        sa.UniqueConstraint("tenant_id", "kind", name="uq_data_provider_settings_tenant_kind"),
    )
    op.create_table(
        "data_provider_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject_index", sa.String(length=64), nullable=False),
        sa.Column("subject_masked", sa.String(length=40), nullable=False),
        sa.Column("subject_kind", sa.String(length=10), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("called_by", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_data_provider_calls_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_provider_calls")),
    )
    with op.batch_alter_table("data_provider_calls", schema=None) as batch_op:
        batch_op.create_index("ix_data_provider_calls_tenant_at", ["tenant_id", "at"], unique=False)
        batch_op.create_index("ix_data_provider_calls_tenant_subject", ["tenant_id", "subject_index"], unique=False)
        batch_op.create_index(
            "ix_data_provider_calls_tenant_application", ["tenant_id", "application_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("data_provider_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_data_provider_calls_tenant_application")
        batch_op.drop_index("ix_data_provider_calls_tenant_subject")
        batch_op.drop_index("ix_data_provider_calls_tenant_at")
    op.drop_table("data_provider_calls")
    op.drop_table("data_provider_settings")
