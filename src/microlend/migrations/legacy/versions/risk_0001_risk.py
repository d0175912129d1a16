"""risk

Revision ID: risk_0001
Revises: data_0001
Create Date: 2026-11-28 23:26:08.377280
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'risk_0001'
down_revision: str | Sequence[str] | None = 'data_0001'
branch_labels: str | Sequence[str] | None = ('risk',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_risk_model_versions()
    _create_risk_model_scores()


def downgrade() -> None:
    _drop_risk_model_scores()
    _drop_risk_model_versions()


def _create_risk_model_versions() -> None:
    op.create_table('risk_model_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('dataset_hash', sa.String(length=64), nullable=False),
        sa.Column('target', sa.String(length=100), nullable=False),
        sa.Column('bad', sa.String(length=100), nullable=False),
        sa.Column('features', sa.Text(), nullable=False),
        sa.Column('parameters', sa.Text(), nullable=False),
        sa.Column('metrics', sa.Text(), nullable=False),
        sa.Column('store_path', sa.Text(), nullable=False),
        sa.Column('trained_by', sa.Integer(), nullable=False),
        sa.Column('trained_by_name', sa.String(length=100), nullable=False),
        sa.Column('approved_by', sa.Integer(), nullable=True),
        sa.Column('approved_by_name', sa.String(length=100), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_model_versions_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_model_versions')),
        sa.UniqueConstraint('tenant_id', 'content_hash', name='uq_risk_model_versions_tenant_content'),
        sa.UniqueConstraint('tenant_id', 'name', 'version', name='uq_risk_model_versions_tenant_name_version')
    )
    with op.batch_alter_table('risk_model_versions', schema=None) as batch_op:
        batch_op.create_index('ix_risk_model_versions_tenant_status', ['tenant_id', 'status'], unique=False)


def _create_risk_model_scores() -> None:
    op.create_table('risk_model_scores',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('model_version_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('shadow', sa.Boolean(), nullable=False),
        sa.Column('subject_type', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=60), nullable=False),
        sa.Column('pd', sa.String(length=40), nullable=False),
        sa.Column('score', sa.String(length=40), nullable=False),
        sa.Column('reasons', sa.Text(), nullable=False),
        sa.Column('scored_by', sa.Integer(), nullable=False),
        sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['model_version_id'], ['risk_model_versions.id'], name=op.f('fk_risk_model_scores_model_version_id_risk_model_versions')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_model_scores_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_model_scores'))
    )
    with op.batch_alter_table('risk_model_scores', schema=None) as batch_op:
        batch_op.create_index('ix_risk_model_scores_subject', ['tenant_id', 'subject_type', 'subject_id'], unique=False)
        batch_op.create_index('ix_risk_model_scores_version', ['model_version_id', 'scored_at'], unique=False)


def _drop_risk_model_scores() -> None:
    with op.batch_alter_table('risk_model_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_model_scores_version')
        batch_op.drop_index('ix_risk_model_scores_subject')
    op.drop_table('risk_model_scores')


def _drop_risk_model_versions() -> None:
    with op.batch_alter_table('risk_model_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_model_versions_tenant_status')
    op.drop_table('risk_model_versions')
