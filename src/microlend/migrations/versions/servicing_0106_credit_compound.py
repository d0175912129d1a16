"""servicing: products apply credit balances on due dates and charge compound interest (复利); loans keep the
compound-interest setting they were disbursed with

Revision ID: servicing_0106_credit_compound
Revises: servicing_0105_reminders
Create Date: 2026-11-30 05:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0106_credit_compound"
down_revision: str | Sequence[str] | None = "servicing_0105_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    true = sa.text("true")
    op.add_column(
        "servicing_products", sa.Column("auto_apply_credit", sa.Boolean(), server_default=true, nullable=False)
    )
    op.add_column(
        "servicing_products", sa.Column("compound_interest", sa.Boolean(), server_default=true, nullable=False)
    )
    op.add_column("loans", sa.Column("compound_interest", sa.Boolean(), server_default=true, nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("compound_interest")
    with op.batch_alter_table("servicing_products", schema=None) as batch_op:
        batch_op.drop_column("compound_interest")
        batch_op.drop_column("auto_apply_credit")
