"""core: each bank's stored verification of its audit chain (verified through which record, when, outcome)

Revision ID: core_0107_audit_checks
Revises: core_0106_delivery
Create Date: 2026-11-30 19:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'core_0107_audit_checks'
down_revision: str | Sequence[str] | None = 'core_0106_delivery'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_checks',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('problems', sa.Text(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('full_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_audit_checks'))
    )


def downgrade() -> None:
    op.drop_table('audit_checks')
