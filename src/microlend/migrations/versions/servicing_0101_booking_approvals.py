"""servicing: direct bookings wait for a second person's approval; a bank's rate cap; a product's overpayment tolerance

Revision ID: servicing_0101_booking_approvals
Revises: servicing_0100
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0101_booking_approvals'
down_revision: str | Sequence[str] | None = 'servicing_0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite can add a NOT NULL column with a default; no table copy under the loans'
    # foreign keys)
    op.add_column('servicing_products', sa.Column('overpayment_tolerance', sa.BigInteger(),
                                                  server_default=sa.text('0'), nullable=False))
    op.create_table('servicing_settings',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('rate_cap', sa.String(length=40), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_servicing_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_servicing_settings'))
    )
    op.create_table('loan_bookings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('product_code', sa.String(length=40), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('term_months', sa.Integer(), nullable=False),
        sa.Column('annual_rate', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('application_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('booked_by_id', sa.Integer(), nullable=False),
        sa.Column('booked_by', sa.String(length=100), nullable=False),
        sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('credit_line_id', sa.Integer(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['credit_line_id'], ['credit_lines.id'],
                                name=op.f('fk_loan_bookings_credit_line_id_credit_lines')),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_bookings_loan_id_loans')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loan_bookings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_bookings')),
        sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_loan_bookings_tenant_key')
    )
    with op.batch_alter_table('loan_bookings', schema=None) as batch_op:
        batch_op.create_index('ix_loan_bookings_tenant_status', ['tenant_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('loan_bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_bookings_tenant_status')
    op.drop_table('loan_bookings')
    op.drop_table('servicing_settings')
    op.drop_column('servicing_products', 'overpayment_tolerance')
