"""parties: borrowers' app devices and their push tokens

Revision ID: parties_0103_devices
Revises: parties_0102_consent_evidence
Create Date: 2026-11-30 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'parties_0103_devices'
down_revision: str | Sequence[str] | None = 'parties_0102_consent_evidence'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('party_devices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=10), nullable=False),
        sa.Column('token_enc', sa.String(length=1000), nullable=False),
        sa.Column('token_index', sa.String(length=64), nullable=False),
        sa.Column('token_masked', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_reason', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'token_index', name='uq_party_devices_token'),
    )
    op.create_index('ix_party_devices_customer', 'party_devices', ['tenant_id', 'customer_id', 'status'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_party_devices_customer', table_name='party_devices')
    op.drop_table('party_devices')
