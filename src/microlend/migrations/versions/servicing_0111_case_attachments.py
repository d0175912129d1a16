"""servicing: photos and PDFs attached to a collection case from the collector's phone

Revision ID: servicing_0111_case_attachments
Revises: servicing_0110_fee_eir
Create Date: 2026-11-30 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0111_case_attachments"
down_revision: str | Sequence[str] | None = 'servicing_0110_fee_eir'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collection_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["collection_cases.id"],
                                name=op.f("fk_collection_attachments_case_id_collection_cases")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_collection_attachments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_attachments")),
    )
    with op.batch_alter_table("collection_attachments", schema=None) as batch_op:
        batch_op.create_index("ix_collection_attachments_case", ["tenant_id", "case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collection_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_collection_attachments_case")
    op.drop_table("collection_attachments")
