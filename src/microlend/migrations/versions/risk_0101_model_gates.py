"""risk: model gates per bank, and who validated and who approved a model version, and when

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
    op.create_table('risk_model_signoffs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('model_version_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.String(length=20), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=100), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['model_version_id'], ['risk_model_versions.id'],
                                name=op.f('fk_risk_model_signoffs_model_version_id_risk_model_versions')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_model_signoffs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_model_signoffs')),
        sa.UniqueConstraint('model_version_id', 'step', name='uq_risk_model_signoffs_version_step')
    )
    with op.batch_alter_table('risk_model_signoffs', schema=None) as batch_op:
        batch_op.create_index('ix_risk_model_signoffs_tenant_version', ['tenant_id', 'model_version_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_model_signoffs', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_model_signoffs_tenant_version')
    op.drop_table('risk_model_signoffs')
    op.drop_table('risk_settings')
