"""servicing: extension and restructuring requests with four eyes (展期/重组); a fixed repayment day (固定还款日) on
products and on booked loans

Revision ID: servicing_0109_restructuring
Revises: servicing_0108_loan_class_index
Create Date: 2026-11-30 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0109_restructuring"
down_revision: str | Sequence[str] | None = "servicing_0108_loan_class_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("servicing_products") as batch:
        batch.add_column(sa.Column("repayment_day", sa.Integer(), nullable=True))
    with op.batch_alter_table("loan_bookings") as batch:
        batch.add_column(sa.Column("repayment_day", sa.Integer(), nullable=True))
    op.create_table(
        "loan_restructures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("annual_rate", sa.String(length=40), nullable=True),
        sa.Column("capitalise_arrears", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("loan_class", sa.String(length=20), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("restructured", sa.Boolean(), nullable=False),
        sa.Column("observe_until", sa.Date(), nullable=True),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("capitalised", sa.BigInteger(), nullable=False),
        sa.Column("maturity_before", sa.Date(), nullable=True),
        sa.Column("maturity_after", sa.Date(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("journal_entry_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_restructures_loan_id_loans")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_loan_restructures_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_restructures")),
    )
    op.create_index("ix_loan_restructures_tenant_status", "loan_restructures", ["tenant_id", "status"], unique=False)
    op.create_index(op.f("ix_loan_restructures_loan_id"), "loan_restructures", ["loan_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_loan_restructures_loan_id"), table_name="loan_restructures")
    op.drop_index("ix_loan_restructures_tenant_status", table_name="loan_restructures")
    op.drop_table("loan_restructures")
    with op.batch_alter_table("loan_bookings") as batch:
        batch.drop_column("repayment_day")
    with op.batch_alter_table("servicing_products") as batch:
        batch.drop_column("repayment_day")
