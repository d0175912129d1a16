"""parties: links between a business and its legal representative or owner (obligor groups)

Revision ID: parties_0101_obligor_links
Revises: parties_0100
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'parties_0101_obligor_links'
down_revision: str | Sequence[str] | None = 'parties_0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('party_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('business_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=30), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['business_id'], ['customers.id'], name=op.f('fk_party_links_business_id_customers')),
        sa.ForeignKeyConstraint(['person_id'], ['customers.id'], name=op.f('fk_party_links_person_id_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_party_links_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_party_links')),
        sa.UniqueConstraint('tenant_id', 'business_id', 'person_id', name='uq_party_links_pair')
    )
    with op.batch_alter_table('party_links', schema=None) as batch_op:
        batch_op.create_index('ix_party_links_person', ['tenant_id', 'person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('party_links', schema=None) as batch_op:
        batch_op.drop_index('ix_party_links_person')
    op.drop_table('party_links')
