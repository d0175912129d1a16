"""risk: the model monitoring runs of the worker (drift, performance and alerts per version in use and day)

Revision ID: risk_0102_monitoring_runs
Revises: risk_0101_model_gates
Create Date: 2026-11-30 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'risk_0102_monitoring_runs'
down_revision: str | Sequence[str] | None = 'risk_0101_model_gates'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_monitoring_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('model_version_id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('cases', sa.Integer(), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('alerts', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['model_version_id'], ['risk_model_versions.id'],
                                name=op.f('fk_risk_monitoring_runs_model_version_id_risk_model_versions')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_monitoring_runs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_monitoring_runs')),
        sa.UniqueConstraint('tenant_id', 'model_version_id', 'as_of', name='uq_risk_monitoring_runs_version_day')
    )
    with op.batch_alter_table('risk_monitoring_runs', schema=None) as batch_op:
        batch_op.create_index('ix_risk_monitoring_runs_tenant_as_of', ['tenant_id', 'as_of'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_monitoring_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_monitoring_runs_tenant_as_of')
    op.drop_table('risk_monitoring_runs')
