"""core: the event outbox (one row per domain event and subscribed handler, retried until delivered)

Revision ID: core_0101
Revises: core_0100
Create Date: 2026-11-29 19:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'core_0101'
down_revision: str | Sequence[str] | None = 'core_0100'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('event_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('handler', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_outbox')),
    sa.UniqueConstraint('event_id', 'handler', name='uq_event_outbox_event_handler')
    )
    op.create_index('ix_event_outbox_due', 'event_outbox', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_event_outbox_tenant', 'event_outbox', ['tenant_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_event_outbox_tenant', table_name='event_outbox')
    op.drop_index('ix_event_outbox_due', table_name='event_outbox')
    op.drop_table('event_outbox')
