"""risk: the bank's data partnerships for joint modelling (partner, endpoint, key fingerprint, contract, validity)

Revision ID: risk_0103_partnerships
Revises: risk_0102_monitoring_runs
Create Date: 2026-11-30 16:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'risk_0103_partnerships'
down_revision: str | Sequence[str] | None = 'risk_0102_monitoring_runs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_partnerships',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('endpoint_url', sa.String(length=300), nullable=False),
        sa.Column('key_fingerprint', sa.String(length=16), nullable=False),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('contract_ref', sa.String(length=100), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=False),
        sa.Column('valid_to', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('status_reason', sa.Text(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=False),
        sa.Column('created_by_name', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_partnerships_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_partnerships')),
        sa.UniqueConstraint('tenant_id', 'name', name='uq_risk_partnerships_tenant_name')
    )
    with op.batch_alter_table('risk_partnerships', schema=None) as batch_op:
        batch_op.create_index('ix_risk_partnerships_tenant_status', ['tenant_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_partnerships', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_partnerships_tenant_status')
    op.drop_table('risk_partnerships')
