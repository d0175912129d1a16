"""parties: customers and their consents

Revision ID: parties_0100
Revises:
Create Date: 2026-11-29 19:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'parties_0100'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('parties',)
depends_on: str | Sequence[str] | None = ('core_0100',)


def upgrade() -> None:
    _create_customers()
    _create_consents()


def downgrade() -> None:
    _drop_consents()
    _drop_customers()


def _create_customers() -> None:
    op.create_table('customers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('id_number_enc', sa.String(length=200), nullable=False),
        sa.Column('id_number_index', sa.String(length=64), nullable=False),
        sa.Column('id_number_masked', sa.String(length=40), nullable=False),
        sa.Column('phone_enc', sa.String(length=200), nullable=False),
        sa.Column('phone_index', sa.String(length=64), nullable=False),
        sa.Column('phone_masked', sa.String(length=20), nullable=False),
        sa.Column('birth_date', sa.Date(), nullable=True),
        sa.Column('address', sa.String(length=300), nullable=False),
        sa.Column('industry', sa.String(length=60), nullable=False),
        sa.Column('branch', sa.String(length=100), nullable=False),
        sa.Column('officer_user_id', sa.Integer(), nullable=True),
        sa.Column('marketing_consent', sa.Boolean(), nullable=False),
        sa.Column('attributes', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_customers_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
        sa.UniqueConstraint('tenant_id', 'id_number_index', name='uq_customers_tenant_id_number')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_phone_index'), ['phone_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_customers_tenant_name', ['tenant_id', 'name'], unique=False)


def _create_consents() -> None:
    op.create_table('consents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('granted_by', sa.String(length=100), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_consents_customer_id_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_consents_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_customer', ['tenant_id', 'customer_id', 'scope'], unique=False)


def _drop_consents() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_customer')
    op.drop_table('consents')


def _drop_customers() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_tenant_name')
        batch_op.drop_index(batch_op.f('ix_customers_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_customers_phone_index'))
    op.drop_table('customers')
