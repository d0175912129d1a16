"""origination: credit applications

Revision ID: origination_0100
Revises:
Create Date: 2026-11-29 19:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'origination_0100'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('origination',)
depends_on: str | Sequence[str] | None = ('core_0100', 'parties_0100')


def upgrade() -> None:
    _create_applications()


def downgrade() -> None:
    _drop_applications()


def _create_applications() -> None:
    op.create_table('applications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('product_code', sa.String(length=40), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('term_months', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=200), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('branch', sa.String(length=100), nullable=False),
        sa.Column('submitted_by', sa.String(length=100), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decision_id', sa.Integer(), nullable=True),
        sa.Column('decision_outcome', sa.String(length=10), nullable=True),
        sa.Column('decision_limit', sa.BigInteger(), nullable=True),
        sa.Column('decision_rate', sa.String(length=40), nullable=True),
        sa.Column('decision_reasons', sa.Text(), nullable=False),
        sa.Column('score', sa.String(length=40), nullable=True),
        sa.Column('pd', sa.String(length=40), nullable=True),
        sa.Column('model_version', sa.String(length=100), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_ms', sa.Integer(), nullable=True),
        sa.Column('automatic', sa.Boolean(), nullable=False),
        sa.Column('review_due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('recommended_by', sa.Integer(), nullable=True),
        sa.Column('recommendation', sa.String(length=10), nullable=True),
        sa.Column('recommended_amount', sa.BigInteger(), nullable=True),
        sa.Column('recommended_rate', sa.String(length=40), nullable=True),
        sa.Column('review_notes', sa.String(length=2000), nullable=False),
        sa.Column('field_visit', sa.Text(), nullable=False),
        sa.Column('approvals', sa.Text(), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('offer_amount', sa.BigInteger(), nullable=True),
        sa.Column('offer_rate', sa.String(length=40), nullable=True),
        sa.Column('offer_apr', sa.String(length=40), nullable=True),
        sa.Column('offer_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('credit_line_id', sa.Integer(), nullable=True),
        sa.Column('disbursed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_applications_customer_id_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_applications_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_applications'))
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.create_index('ix_applications_customer', ['tenant_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_applications_queue', ['tenant_id', 'status', 'branch'], unique=False)


def _drop_applications() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index('ix_applications_queue')
        batch_op.drop_index('ix_applications_customer')
    op.drop_table('applications')
