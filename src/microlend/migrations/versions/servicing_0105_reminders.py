"""servicing: repayment reminders — a bank's reminder settings and templates, the reminders outbox, opt-outs

Revision ID: servicing_0105_reminders
Revises: servicing_0104_writeoff
Create Date: 2026-11-30 05:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'servicing_0105_reminders'
down_revision: str | Sequence[str] | None = 'servicing_0104_writeoff'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminder_settings',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('days_before', sa.Text(), nullable=False),
        sa.Column('overdue_days', sa.Text(), nullable=False),
        sa.Column('quiet_start', sa.String(length=5), nullable=False),
        sa.Column('quiet_end', sa.String(length=5), nullable=False),
        sa.Column('timezone', sa.String(length=60), nullable=False),
        sa.Column('templates', sa.Text(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_reminder_settings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_reminder_settings'))
    )
    op.create_table('reminder_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('ref_date', sa.Date(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('ref_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('message_id', sa.String(length=100), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_outbox')),
        sa.UniqueConstraint('tenant_id', 'loan_id', 'kind', 'ref_date', 'days', 'ref_id',
                            name='uq_reminder_outbox_key')
    )
    with op.batch_alter_table('reminder_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_reminder_outbox_due', ['tenant_id', 'status', 'scheduled_at'], unique=False)
        batch_op.create_index('ix_reminder_outbox_customer', ['tenant_id', 'customer_id'], unique=False)
    op.create_table('reminder_opt_outs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_opt_outs')),
        sa.UniqueConstraint('tenant_id', 'customer_id', 'channel', name='uq_reminder_opt_outs_channel')
    )


def downgrade() -> None:
    op.drop_table('reminder_opt_outs')
    with op.batch_alter_table('reminder_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_reminder_outbox_customer')
        batch_op.drop_index('ix_reminder_outbox_due')
    op.drop_table('reminder_outbox')
    op.drop_table('reminder_settings')
