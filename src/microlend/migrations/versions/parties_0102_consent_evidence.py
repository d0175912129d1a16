"""parties: consents record the text agreed to, the evidence and revocation; one-time codes

Revision ID: parties_0102_consent_evidence
Revises: parties_0101_obligor_links
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'parties_0102_consent_evidence'
down_revision: str | Sequence[str] | None = 'parties_0101_obligor_links'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=10), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('text_version', sa.String(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('text_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('evidence', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revoked_by', sa.String(length=100), nullable=True))
    op.create_table('otp_challenges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=80), nullable=False),
        sa.Column('context', sa.Text(), nullable=False),
        sa.Column('salt', sa.String(length=32), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('sent_to', sa.String(length=20), nullable=False),
        sa.Column('sender', sa.String(length=40), nullable=False),
        sa.Column('message_id', sa.String(length=100), nullable=False),
        sa.Column('requested_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_otp_challenges_customer_id_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_otp_challenges_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_challenges'))
    )
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.create_index('ix_otp_challenges_purpose', ['tenant_id', 'customer_id', 'purpose'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_otp_challenges_purpose')
    op.drop_table('otp_challenges')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        for column in ('revoked_by', 'revoked_at', 'evidence', 'text_hash', 'text_version', 'locale'):
            batch_op.drop_column(column)
