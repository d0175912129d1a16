"""Write-off (核销): an uncollectable loan leaves the books, with its reason, audited."""

from __future__ import annotations

from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.repository import audit_trail, ledger, loans
from microlend.servicing.service._common import P, _money
from microlend.servicing.service.loans import LoanView, loan_view


def write_off(uow: UnitOfWork, who: Principal, loan_id: int, reason: str) -> LoanView:
    """核销 remove an uncollectable loan from the books: its receivables go to write-off expense."""
    who.require(P.WRITE_OFF)
    if not reason.strip():
        raise ValidationError("reason: say why the loan is written off", field="reason")
    with uow:
        repo, books = loans(uow), ledger(uow)
        loan = repo.get(who.tenant_id, loan_id, lock=True)
        loan.require_active()
        on = books.business_date(who.tenant_id)
        done = loan.write_off(on, reason)
        if done.entry is not None:
            books.post(who, on, done.entry)
        repo.save(loan)
        audit_trail(uow).record(
            who, "loan.write_off", "loan", loan.id, reason=reason,
            after={"principal": _money(done.principal), "interest": _money(done.interest),
                   "penalty": _money(done.penalty)},
        )
        view = loan_view(loan)
        uow.commit()
    return view
