"""risk: a data partnership records which of the partner's features it covers and the consent basis of the data use

Revision ID: risk_0104_partnership_terms
Revises: risk_0103_partnerships
Create Date: 2026-11-30 19:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'risk_0104_partnership_terms'
down_revision: str | Sequence[str] | None = 'risk_0103_partnerships'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a partnership recorded before these terms shows none until it is recorded again
    with op.batch_alter_table('risk_partnerships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('features', sa.Text(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('consent_basis', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('risk_partnerships', schema=None) as batch_op:
        batch_op.drop_column('consent_basis')
        batch_op.drop_column('features')
