"""servicing: collections — a bank's strategy and conduct settings, collection cases, the actions on them

Revision ID: servicing_0107_collections
Revises: servicing_0106_credit_compound
Create Date: 2026-11-30 06:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0107_collections'
down_revision: str | Sequence[str] | None = 'servicing_0106_credit_compound'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('collection_settings',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('strategy', sa.Text(), nullable=False),
        sa.Column('allowed_start', sa.String(length=5), nullable=False),
        sa.Column('allowed_end', sa.String(length=5), nullable=False),
        sa.Column('timezone', sa.String(length=60), nullable=False),
        sa.Column('max_contacts_per_day', sa.Integer(), nullable=False),
        sa.Column('templates', sa.Text(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_collection_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_collection_settings'))
    )
    op.create_table('collection_cases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('branch', sa.String(length=60), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('bucket', sa.String(length=10), nullable=False),
        sa.Column('days_past_due', sa.Integer(), nullable=False),
        sa.Column('amount_overdue', sa.BigInteger(), nullable=False),
        sa.Column('queue', sa.String(length=60), nullable=False),
        sa.Column('next_action', sa.String(length=40), nullable=False),
        sa.Column('assignee', sa.String(length=100), nullable=True),
        sa.Column('escalation', sa.Integer(), nullable=False),
        sa.Column('registered_contacts', sa.Text(), nullable=False),
        sa.Column('opened_on', sa.Date(), nullable=False),
        sa.Column('closed_on', sa.Date(), nullable=True),
        sa.Column('close_reason', sa.String(length=20), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_collection_cases_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_cases'))
    )
    with op.batch_alter_table('collection_cases', schema=None) as batch_op:
        batch_op.create_index('ix_collection_cases_open', ['tenant_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_collection_cases_queue', ['tenant_id', 'status', 'queue', 'id'], unique=False)
        batch_op.create_index('ix_collection_cases_assignee', ['tenant_id', 'status', 'assignee', 'id'],
                              unique=False)
        batch_op.create_index('ix_collection_cases_loan', ['tenant_id', 'loan_id'], unique=False)
    op.create_table('collection_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=True),
        sa.Column('party', sa.String(length=100), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=True),
        sa.Column('template', sa.String(length=40), nullable=True),
        sa.Column('rule', sa.String(length=40), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=True),
        sa.Column('promise_date', sa.Date(), nullable=True),
        sa.Column('promise_status', sa.String(length=20), nullable=True),
        sa.Column('promised_on', sa.Date(), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['collection_cases.id'],
                                name=op.f('fk_collection_actions_case_id_collection_cases')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_collection_actions_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_actions'))
    )
    with op.batch_alter_table('collection_actions', schema=None) as batch_op:
        batch_op.create_index('ix_collection_actions_case', ['tenant_id', 'case_id', 'id'], unique=False)
        batch_op.create_index('ix_collection_actions_promises', ['tenant_id', 'kind', 'promise_status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('collection_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_actions_promises')
        batch_op.drop_index('ix_collection_actions_case')
    op.drop_table('collection_actions')
    with op.batch_alter_table('collection_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_cases_loan')
        batch_op.drop_index('ix_collection_cases_assignee')
        batch_op.drop_index('ix_collection_cases_queue')
        batch_op.drop_index('ix_collection_cases_open')
    op.drop_table('collection_cases')
    op.drop_table('collection_settings')
