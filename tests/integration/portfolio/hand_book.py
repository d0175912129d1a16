"""A small book of loans whose month-end states, vintages and roll rates were worked out by hand.

Window: January to April 2025 as of 15 April (points: 31 Jan, 28 Feb, 31 Mar, 15 Apr). Loans, with each
installment's (due date, paid date):

A  disbursed 10 Jan: (10 Feb, 10 Feb) (10 Mar, 9 Mar) (10 Apr, unpaid)         M0 M0 M0 M1 (5 days on 15 Apr)
B  disbursed 20 Jan: (20 Feb, 1 Apr) (20 Mar, 1 Apr)                           M0 M1 M2 M0; 30+ on 23 Mar
C  disbursed 5 Jan:  (5 Feb, unpaid); written off 15 Mar                       M0 M1 written_off; 30+ on 8 Mar,
                                                                               90+ by its write-off (15 Mar)
D  disbursed 3 Feb:  (3 Mar, 3 Mar) (3 Apr, 20 Mar); repaid in full 20 Mar     (Feb) M0, then paid
E  disbursed 15 Dec 2024 (before the window): (15 Jan, -) (15 Feb, -) (15 Mar, -)
                                                                               M1 M2 M3 M3 (90 days on 15 Apr)
F  disbursed 10 Mar: (10 Apr, 10 Apr)                                          (Mar) M0 M0
H  disbursed 25 Jan: (25 Feb, 28 Mar) (25 Mar, 28 Mar) (25 Apr, -)             M0 M1 M0 M0; paid on day 31 of
                                                                               lateness: 30 days past due at worst
Another bank's overdue loan must count nowhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from microlend.core.uow import UnitOfWork
from microlend.servicing.tables import InstallmentRow, LoanRow, ProductRow

AS_OF = date(2025, 4, 15)
MONTHS = 4

D = date
Loan = tuple[date, str, date | None, list[tuple[date, date | None]]]
BOOK: dict[str, Loan] = {
    "A": (D(2025, 1, 10), "active", None, [(D(2025, 2, 10), D(2025, 2, 10)), (D(2025, 3, 10), D(2025, 3, 9)),
                                            (D(2025, 4, 10), None)]),
    "B": (D(2025, 1, 20), "active", None, [(D(2025, 2, 20), D(2025, 4, 1)), (D(2025, 3, 20), D(2025, 4, 1))]),
    "C": (D(2025, 1, 5), "written_off", D(2025, 3, 15), [(D(2025, 2, 5), None)]),
    "D": (D(2025, 2, 3), "closed", D(2025, 3, 20), [(D(2025, 3, 3), D(2025, 3, 3)), (D(2025, 4, 3), D(2025, 3, 20))]),
    "E": (D(2024, 12, 15), "active", None, [(D(2025, 1, 15), None), (D(2025, 2, 15), None),
                                            (D(2025, 3, 15), None)]),
    "F": (D(2025, 3, 10), "active", None, [(D(2025, 4, 10), D(2025, 4, 10))]),
    "H": (D(2025, 1, 25), "active", None, [(D(2025, 2, 25), D(2025, 3, 28)), (D(2025, 3, 25), D(2025, 3, 28)),
                                            (D(2025, 4, 25), None)]),
}
#: Another bank's loan: overdue since January, disbursed in the window.
OTHER: Loan = (D(2025, 1, 2), "active", None, [(D(2025, 1, 5), None)])


def put_loans(uow: UnitOfWork, tenant_id: int, book: dict[str, Loan]) -> dict[str, int]:
    """The loans with their installments as close of business and repayments would have left them."""
    ids = {}
    with uow:
        s = uow.session
        product = s.execute(select(ProductRow).where(ProductRow.tenant_id == tenant_id)
                            .order_by(ProductRow.id).limit(1)).scalar_one()
        for name, (disbursed, status, closed, installments) in book.items():
            loan = LoanRow(tenant_id=tenant_id, product_id=product.id, method=product.method,
                           principal=Decimal("1000.00"), annual_rate=Decimal("0.12"), rate_e8=12_000_000,
                           penalty_rate_e8=18_000_000, term_months=len(installments), fee_mode=product.fee_mode,
                           allocation_order=list(product.allocation_order), disbursed_on=disbursed,
                           maturity_date=installments[-1][0], status=status, closed_on=closed,
                           created_at=datetime(2025, 1, 1, tzinfo=UTC))
            s.add(loan)
            s.flush()
            start = disbursed
            for n, (due, paid) in enumerate(installments, 1):
                s.add(InstallmentRow(
                    tenant_id=tenant_id, loan_id=loan.id, number=n, period_start=start, due_date=due,
                    start_day=start.toordinal(), due_day=due.toordinal(), principal=Decimal("100.00"),
                    interest=Decimal("10.00"), principal_paid=Decimal("100.00") if paid else Decimal(0),
                    interest_paid=Decimal("10.00") if paid else Decimal(0), interest_accrued=Decimal("10.00"),
                    status="paid" if paid else ("written_off" if status == "written_off" else "overdue"),
                    paid_on=paid))
                start = due
            ids[name] = loan.id
        uow.commit()
    return ids
