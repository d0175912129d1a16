"""marketing: journeys (follow-up steps and who each reached), message variants, department, product and budget

Revision ID: marketing_0103_journeys
Revises: marketing_0102
Create Date: 2026-11-30 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'marketing_0103_journeys'
down_revision: str | Sequence[str] | None = 'marketing_0102'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('marketing_campaigns') as batch:
        batch.add_column(sa.Column('department', sa.String(length=60), server_default='', nullable=False))
        batch.add_column(sa.Column('product', sa.String(length=60), server_default='', nullable=False))
        batch.add_column(sa.Column('budget', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('variants', sa.Text(), nullable=True))
    with op.batch_alter_table('marketing_assignments') as batch:
        batch.add_column(sa.Column('variant', sa.String(length=20), nullable=True))
    op.create_table('marketing_journey_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('after_days', sa.Integer(), nullable=False),
        sa.Column('condition', sa.String(length=30), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('template', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('stop_reason', sa.String(length=200), nullable=True),
        sa.Column('candidates', sa.Integer(), nullable=False),
        sa.Column('contacted', sa.Integer(), nullable=False),
        sa.Column('blocked', sa.Text(), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'],
                                name=op.f('fk_marketing_journey_steps_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_journey_steps_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_journey_steps')),
        sa.UniqueConstraint('campaign_id', 'position', name='uq_marketing_journey_steps_position')
    )
    op.create_index(op.f('ix_marketing_journey_steps_tenant_id'), 'marketing_journey_steps', ['tenant_id'])
    op.create_table('marketing_journey_contacts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'],
                                name=op.f('fk_marketing_journey_contacts_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['step_id'], ['marketing_journey_steps.id'],
                                name=op.f('fk_marketing_journey_contacts_step_id_marketing_journey_steps')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_marketing_journey_contacts_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_journey_contacts')),
        sa.UniqueConstraint('step_id', 'customer_id', name='uq_marketing_journey_contacts_customer')
    )
    op.create_index('ix_marketing_journey_contacts_campaign', 'marketing_journey_contacts',
                    ['tenant_id', 'campaign_id'])


def downgrade() -> None:
    op.drop_index('ix_marketing_journey_contacts_campaign', table_name='marketing_journey_contacts')
    op.drop_table('marketing_journey_contacts')
    op.drop_index(op.f('ix_marketing_journey_steps_tenant_id'), table_name='marketing_journey_steps')
    op.drop_table('marketing_journey_steps')
    with op.batch_alter_table('marketing_assignments') as batch:
        batch.drop_column('variant')
    with op.batch_alter_table('marketing_campaigns') as batch:
        batch.drop_column('variants')
        batch.drop_column('budget')
        batch.drop_column('product')
        batch.drop_column('department')
