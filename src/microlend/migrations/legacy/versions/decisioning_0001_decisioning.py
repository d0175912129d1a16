"""decisioning

Revision ID: decisioning_0001
Revises: risk_0001
Create Date: 2026-11-28 23:26:08.477492
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'decisioning_0001'
down_revision: str | Sequence[str] | None = 'risk_0001'
branch_labels: str | Sequence[str] | None = ('decisioning',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_decision_setups()
    _create_decisions()
    _create_policy_versions()


def downgrade() -> None:
    _drop_policy_versions()
    _drop_decisions()
    _drop_decision_setups()


def _create_decision_setups() -> None:
    op.create_table('decision_setups',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('champion_hash', sa.String(length=64), nullable=False),
        sa.Column('challenger_hash', sa.String(length=64), nullable=True),
        sa.Column('challenger_share_bp', sa.Integer(), nullable=False),
        sa.Column('challenger_shadow', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_decision_setups_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_decision_setups'))
    )


def _create_decisions() -> None:
    op.create_table('decisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.String(length=100), nullable=False),
        sa.Column('application_ref', sa.String(length=100), nullable=True),
        sa.Column('arm', sa.String(length=20), nullable=False),
        sa.Column('acted_on', sa.Boolean(), nullable=False),
        sa.Column('shadow_of', sa.Integer(), nullable=True),
        sa.Column('inputs', sa.Text(), nullable=False),
        sa.Column('model_versions', sa.Text(), nullable=False),
        sa.Column('policy_hash', sa.String(length=64), nullable=False),
        sa.Column('trace', sa.Text(), nullable=True),
        sa.Column('outputs', sa.Text(), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('limit', sa.BigInteger(), nullable=False),
        sa.Column('annual_rate', sa.String(length=40), nullable=True),
        sa.Column('reasons', sa.Text(), nullable=False),
        sa.Column('latency_us', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shadow_of'], ['decisions.id'], name=op.f('fk_decisions_shadow_of_decisions')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_decisions_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_policy_hash'), ['policy_hash'], unique=False)
        batch_op.create_index('ix_decisions_tenant_created', ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_decisions_tenant_customer', ['tenant_id', 'customer_id'], unique=False)


def _create_policy_versions() -> None:
    op.create_table('policy_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('author', sa.String(length=100), nullable=False),
        sa.Column('author_user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('publisher', sa.String(length=100), nullable=True),
        sa.Column('publisher_user_id', sa.Integer(), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_policy_versions_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_versions')),
        sa.UniqueConstraint('tenant_id', 'content_hash', name='uq_policy_versions_tenant_hash')
    )
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_versions_tenant_id'), ['tenant_id'], unique=False)


def _drop_policy_versions() -> None:
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_versions_tenant_id'))
    op.drop_table('policy_versions')


def _drop_decisions() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_decisions_tenant_customer')
        batch_op.drop_index('ix_decisions_tenant_created')
        batch_op.drop_index(batch_op.f('ix_decisions_policy_hash'))
    op.drop_table('decisions')


def _drop_decision_setups() -> None:
    op.drop_table('decision_setups')
