"""marketing: the bank-wide contact policy, campaign schedule and launch approval, delivery of outbox messages

Revision ID: marketing_0101_contact_policy
Revises: marketing_0100
Create Date: 2026-11-30 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'marketing_0101_contact_policy'
down_revision: str | Sequence[str] | None = 'marketing_0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('marketing_contact_policies',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('cap_max_contacts', sa.Integer(), nullable=False),
        sa.Column('cap_window_days', sa.Integer(), nullable=False),
        sa.Column('holdout_share_bp', sa.Integer(), nullable=False),
        sa.Column('quiet_start', sa.String(length=5), nullable=False),
        sa.Column('quiet_end', sa.String(length=5), nullable=False),
        sa.Column('timezone', sa.String(length=60), nullable=False),
        sa.Column('throttle_per_s', sa.Integer(), nullable=False),
        sa.Column('public_host', sa.String(length=200), nullable=False),
        sa.Column('launch_approval', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_contact_policies_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_marketing_contact_policies'))
    )
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('marketing_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('gateway_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('marketing_outbox', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('gateway_id')
        batch_op.drop_column('attempts')
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.drop_column('approved_at')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('ends_at')
        batch_op.drop_column('starts_at')
    op.drop_table('marketing_contact_policies')
