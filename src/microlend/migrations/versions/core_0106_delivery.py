"""core: each bank's HTTP message gateway per channel (SMS, push), credentials encrypted

Revision ID: core_0106_delivery
Revises: core_0105_jobs
Create Date: 2026-11-30 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'core_0106_delivery'
down_revision: str | Sequence[str] | None = 'core_0105_jobs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('message_gateways',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('url', sa.String(length=300), nullable=False),
        sa.Column('api_key_enc', sa.Text(), nullable=True),
        sa.Column('secret_enc', sa.Text(), nullable=True),
        sa.Column('batch_size', sa.Integer(), nullable=False),
        sa.Column('timeout_ms', sa.Integer(), nullable=False),
        sa.Column('throttle_per_s', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_message_gateways_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_gateways')),
        sa.UniqueConstraint('tenant_id', 'channel', name='uq_message_gateways_channel')
    )


def downgrade() -> None:
    op.drop_table('message_gateways')
