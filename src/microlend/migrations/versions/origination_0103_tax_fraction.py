"""origination: the bank's share of declared sales a tax-data loan (税贷) may reach

Revision ID: origination_0103_tax_fraction
Revises: origination_0102_contracts
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "origination_0103_tax_fraction"
down_revision: str | Sequence[str] | None = "origination_0102_contracts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credit_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tax_loan_fraction", sa.String(length=40), server_default="0.3", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("credit_settings", schema=None) as batch_op:
        batch_op.drop_column("tax_loan_fraction")
