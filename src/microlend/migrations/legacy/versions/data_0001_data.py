"""data

Revision ID: data_0001
Revises: servicing_0001
Create Date: 2026-11-28 23:26:08.285278
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'data_0001'
down_revision: str | Sequence[str] | None = 'servicing_0001'
branch_labels: str | Sequence[str] | None = ('data',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_datasets()


def downgrade() -> None:
    _drop_datasets()


def _create_datasets() -> None:
    op.create_table('datasets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('columns', sa.Text(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('contract', sa.Text(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('rejected_rows', sa.Integer(), nullable=False),
        sa.Column('rejected_path', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_datasets_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
        sa.UniqueConstraint('tenant_id', 'name', 'version', name='uq_datasets_tenant_name_version')
    )
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasets_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasets_tenant_id'), ['tenant_id'], unique=False)


def _drop_datasets() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasets_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_datasets_content_hash'))
    op.drop_table('datasets')
