"""origination: signed loan contracts, and the penalty rate of an offer

Revision ID: origination_0102_contracts
Revises: origination_0101_exposure
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'origination_0102_contracts'
down_revision: str | Sequence[str] | None = 'origination_0101_exposure'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_penalty_rate', sa.String(length=40), nullable=True))
    op.create_table('loan_contracts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=40), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('document', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('signed_by', sa.String(length=100), nullable=False),
        sa.Column('otp_challenge_id', sa.Integer(), nullable=True),
        sa.Column('evidence', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'],
                                name=op.f('fk_loan_contracts_application_id_applications')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loan_contracts_customer_id_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loan_contracts_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_contracts')),
        sa.UniqueConstraint('tenant_id', 'application_id', name='uq_loan_contracts_application'),
        sa.UniqueConstraint('tenant_id', 'number', name='uq_loan_contracts_number')
    )


def downgrade() -> None:
    op.drop_table('loan_contracts')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('offer_penalty_rate')
