"""risk: model gates per bank, and who validated and when a model version was validated and approved

Revision ID: risk_0101_model_gates
Revises: risk_0100
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'risk_0101_model_gates'
down_revision: str | Sequence[str] | None = 'risk_0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_settings',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('gates', sa.Text(), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=False),
        sa.Column('updated_by_name', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_risk_settings'))
    )
    with op.batch_alter_table('risk_model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('validated_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('validated_by_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('validated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('risk_model_versions', schema=None) as batch_op:
        batch_op.drop_column('approved_at')
        batch_op.drop_column('validated_at')
        batch_op.drop_column('validated_by_name')
        batch_op.drop_column('validated_by')
    op.drop_table('risk_settings')
