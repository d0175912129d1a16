"""marketing: channel costs and margin for the campaign report, and each campaign's measurement stored at its close

Revision ID: marketing_0102
Revises: marketing_0101_contact_policy
Create Date: 2026-11-30 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'marketing_0102'
down_revision: str | Sequence[str] | None = 'marketing_0101_contact_policy'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('marketing_measurement_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('sms_cost', sa.BigInteger(), nullable=False),
        sa.Column('push_cost', sa.BigInteger(), nullable=False),
        sa.Column('visit_cost', sa.BigInteger(), nullable=False),
        sa.Column('margin_per_disbursed', sa.BigInteger(), nullable=True),
        sa.Column('min_control_per_stratum', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_marketing_measurement_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_measurement_settings')),
        sa.UniqueConstraint('tenant_id', name='uq_marketing_measurement_settings_tenant')
    )
    op.create_table('marketing_campaign_measurements',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('method', sa.String(length=30), nullable=False),
        sa.Column('features', sa.Text(), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('qini_chart', sa.Text(), nullable=True),
        sa.Column('artefact', sa.Text(), nullable=True),
        sa.Column('artefact_sha256', sa.String(length=64), nullable=True),
        sa.Column('closed_by', sa.String(length=100), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'],
                                name=op.f('fk_marketing_campaign_measurements_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_marketing_campaign_measurements_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_campaign_measurements')),
        sa.UniqueConstraint('tenant_id', 'campaign_id', name='uq_marketing_campaign_measurements')
    )


def downgrade() -> None:
    op.drop_table('marketing_campaign_measurements')
    op.drop_table('marketing_measurement_settings')
