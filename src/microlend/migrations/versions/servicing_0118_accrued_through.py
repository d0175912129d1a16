"""servicing: an installment's stored interest accrued holds through its accrued_through day; close of business
no longer writes the scheduled accrual each night (later days' accrual is read by its formula)

Revision ID: servicing_0118_accrued_through
Revises: servicing_0117_cob_engine
Create Date: 2026-12-01 02:40:00
"""

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "servicing_0118_accrued_through"
down_revision: str | Sequence[str] | None = "servicing_0117_cob_engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loan_installments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accrued_through", sa.Integer(), nullable=False, server_default="0"))
    # every stored accrual so far holds through the day before each tenant's open business date (close of
    # business wrote it then, or a repayment since): the next close carries it forward from there
    bind = op.get_bind()
    for tenant_id, open_date in bind.execute(sa.text("SELECT id, business_date FROM tenants")).all():
        day = open_date if isinstance(open_date, date) else date.fromisoformat(str(open_date))
        bind.execute(
            sa.text("UPDATE loan_installments SET accrued_through = :d WHERE tenant_id = :t"),
            {"d": (day - timedelta(days=1)).toordinal(), "t": tenant_id},
        )


def downgrade() -> None:
    # the stored figures become the accrued-to-date again: carried forward to each tenant's last closed date
    bind = op.get_bind()
    for (tenant_id,) in bind.execute(sa.text("SELECT id FROM tenants")).all():
        last = bind.execute(
            sa.text("SELECT MAX(business_date) FROM cob_runs WHERE tenant_id = :t AND status = 'done'"),
            {"t": tenant_id},
        ).scalar()
        if last is None:
            continue
        day = (last if isinstance(last, date) else date.fromisoformat(str(last))).toordinal()
        elapsed = "(CASE WHEN :d + 1 < due_day THEN :d + 1 - start_day ELSE due_day - start_day END)"
        to_date = (
            "(CASE WHEN due_day <= start_day THEN interest ELSE 100 * ((2 * (interest / 100) * "
            f"{elapsed} + (due_day - start_day)) / (2 * (due_day - start_day))) END)"
        )
        bind.execute(
            sa.text(
                f"UPDATE loan_installments SET interest_accrued = {to_date} WHERE tenant_id = :t "
                "AND accrued_through < :d AND interest_accrued < interest AND start_day <= :d "
                "AND status <> 'written_off'"
            ),
            {"d": day, "t": tenant_id},
        )
    with op.batch_alter_table("loan_installments", schema=None) as batch_op:
        batch_op.drop_column("accrued_through")
