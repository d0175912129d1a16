"""marketing: an open campaign's interim report (cached, refreshed when its inputs change), visit tasks' due
dates and the reason an open task was closed for it

Revision ID: marketing_0104_interim_visits
Revises: marketing_0103_journeys
Create Date: 2026-11-30 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'marketing_0104_interim_visits'
down_revision: str | Sequence[str] | None = 'marketing_0103_journeys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('marketing_campaign_interim',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'],
                                name=op.f('fk_marketing_campaign_interim_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_marketing_campaign_interim_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_campaign_interim')),
        sa.UniqueConstraint('tenant_id', 'campaign_id', name='uq_marketing_campaign_interim')
    )
    with op.batch_alter_table('marketing_campaigns') as batch:
        batch.add_column(sa.Column('visit_due_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('marketing_visit_tasks') as batch:
        batch.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('closed_reason', sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('marketing_visit_tasks') as batch:
        batch.drop_column('closed_reason')
        batch.drop_column('due_at')
    with op.batch_alter_table('marketing_campaigns') as batch:
        batch.drop_column('visit_due_days')
    op.drop_table('marketing_campaign_interim')
