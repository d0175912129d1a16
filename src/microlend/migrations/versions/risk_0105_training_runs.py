"""risk: joint training runs with a data partner, their progress as they go and their validation figures

Revision ID: risk_0105_training_runs
Revises: risk_0104_partnership_terms
Create Date: 2026-11-30 20:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'risk_0105_training_runs'
down_revision: str | Sequence[str] | None = 'risk_0104_partnership_terms'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_training_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('partnership_id', sa.Integer(), nullable=False),
        sa.Column('started_by', sa.Integer(), nullable=False),
        sa.Column('started_by_name', sa.String(length=100), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('phase', sa.String(length=12), nullable=False),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('epochs', sa.Integer(), nullable=False),
        sa.Column('batches_done', sa.Integer(), nullable=False),
        sa.Column('batches_total', sa.Integer(), nullable=False),
        sa.Column('shared_ids', sa.Integer(), nullable=True),
        sa.Column('model_id', sa.String(length=32), nullable=True),
        sa.Column('model_version_id', sa.Integer(), nullable=True),
        sa.Column('settings', sa.Text(), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_training_runs_tenant_id_tenants')),
        sa.ForeignKeyConstraint(['partnership_id'], ['risk_partnerships.id'],
                                name=op.f('fk_risk_training_runs_partnership_id_risk_partnerships')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_training_runs'))
    )
    with op.batch_alter_table('risk_training_runs', schema=None) as batch_op:
        batch_op.create_index('ix_risk_training_runs_tenant_partnership',
                              ['tenant_id', 'partnership_id', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_training_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_training_runs_tenant_partnership')
    op.drop_table('risk_training_runs')
