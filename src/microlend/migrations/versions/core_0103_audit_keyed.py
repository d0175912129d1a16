"""core: the audit chain is keyed (HMAC-SHA256 with a key held outside the database) and its head signed

Existing heads get keyed_from = 0 (not yet sealed); `microlend.core.migrate.upgrade` seals each such chain
right after this revision, with a keyed record that links to the last unkeyed one.

Revision ID: core_0103
Revises: core_0102
Create Date: 2026-11-29 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'core_0103'
down_revision: str | Sequence[str] | None = 'core_0102'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_heads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed_from', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('audit_heads', schema=None) as batch_op:
        batch_op.drop_column('mac')
        batch_op.drop_column('keyed_from')
