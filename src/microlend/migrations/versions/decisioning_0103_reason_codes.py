"""decisioning: each bank's reason-code catalogue, seeded from the built-in codes

Revision ID: decisioning_0103_reason_codes
Revises: decisioning_0101_governance
Create Date: 2026-11-30 05:30:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "decisioning_0103_reason_codes"
down_revision: str | Sequence[str] | None = "decisioning_0102_limit_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from microlend.decisioning.reasons import CATALOGUE

    table = op.create_table(
        "reason_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("borrower_zh", sa.String(length=500), nullable=False),
        sa.Column("borrower_en", sa.String(length=500), nullable=False),
        sa.Column("staff_zh", sa.String(length=500), nullable=False),
        sa.Column("staff_en", sa.String(length=500), nullable=False),
        sa.Column("tellable", sa.Boolean(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_reason_codes_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reason_codes")),
        sa.UniqueConstraint("tenant_id", "code", name="uq_reason_codes_tenant_code"),
    )
    with op.batch_alter_table("reason_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reason_codes_tenant_id"), ["tenant_id"], unique=False)
    bind = op.get_bind()
    now = datetime.now(UTC)
    tenants = [r[0] for r in bind.execute(sa.text("SELECT id FROM tenants ORDER BY id"))]
    rows = [
        {"tenant_id": t, "code": r.code, "borrower_zh": r.zh_cn, "borrower_en": r.en,
         "staff_zh": r.staff_zh or r.zh_cn, "staff_en": r.staff_en or r.en, "tellable": r.tellable,
         "params": json.dumps([list(p) for p in r.params]), "updated_by": "system", "updated_at": now}
        for t in tenants
        for r in CATALOGUE.values()
    ]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table("reason_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reason_codes_tenant_id"))
    op.drop_table("reason_codes")
