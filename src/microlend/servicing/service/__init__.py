"""Servicing use cases, split by use case: products, disbursement, credit lines, repayments (idempotent,
reversible; credit balance; early repayment), write-off with four eyes and recoveries, judgement
downgrades, loan queries, and the ledger's trial balance and
reconciliation. Each takes ``(uow, who, ...)``, checks permission and tenant, posts one balanced journal
entry per money event, and writes an audit record in the same transaction.

Every name other modules import from ``microlend.servicing.service`` stays importable from here."""

from __future__ import annotations

from microlend.servicing.domain import RATE_SCALE
from microlend.servicing.repository import KEY_REUSED, load_entry, post_entry
from microlend.servicing.service._common import ZERO, P, request_hash
from microlend.servicing.service.bookings import (
    BookingView,
    CreditLineBooking,
    approve_booking,
    book_credit_line,
    book_loan,
    get_booking,
    list_bookings,
    reject_booking,
)
from microlend.servicing.service.credit_lines import (
    CreditLineView,
    change_credit_line_limit,
    draw_down,
    open_credit_line,
)
from microlend.servicing.service.disbursement import Disbursement, disburse
from microlend.servicing.service.ledger import (
    LoanDifference,
    Reconciliation,
    ReconciliationRow,
    TrialBalance,
    TrialBalanceRow,
    reconcile,
    reconcile_in,
    reconcile_loans,
    reconcile_loans_in,
    trial_balance,
    trial_balance_in,
)
from microlend.servicing.service.loans import (
    InstallmentView,
    LoanView,
    TransactionView,
    get_loan,
    list_loans,
    loan_schedule,
    loan_transactions,
    loan_view,
)
from microlend.servicing.service.products import (
    ProductView,
    create_product,
    list_products,
    nonaccrual_settings,
    rate_cap,
    set_nonaccrual_settings,
    set_rate_cap,
    setup_tenant,
    update_product,
)
from microlend.servicing.service.repayments import (
    RepaymentView,
    apply_credit_balance,
    post_repayment,
    repay_early,
    reverse_repayment,
)
from microlend.servicing.service.write_off import (
    ClassChangeView,
    WriteOffView,
    approve_write_off,
    bad_loan_settings,
    class_history,
    downgrade_loan,
    get_write_off,
    list_write_offs,
    reject_write_off,
    request_write_off,
    set_bad_loan_settings,
)

__all__ = [
    "KEY_REUSED",
    "RATE_SCALE",
    "ZERO",
    "BookingView",
    "ClassChangeView",
    "CreditLineBooking",
    "CreditLineView",
    "Disbursement",
    "InstallmentView",
    "LoanDifference",
    "LoanView",
    "P",
    "ProductView",
    "Reconciliation",
    "ReconciliationRow",
    "RepaymentView",
    "TransactionView",
    "TrialBalance",
    "TrialBalanceRow",
    "WriteOffView",
    "apply_credit_balance",
    "approve_booking",
    "approve_write_off",
    "bad_loan_settings",
    "book_credit_line",
    "book_loan",
    "change_credit_line_limit",
    "class_history",
    "create_product",
    "disburse",
    "downgrade_loan",
    "draw_down",
    "get_booking",
    "get_loan",
    "get_write_off",
    "list_bookings",
    "list_loans",
    "list_products",
    "list_write_offs",
    "load_entry",
    "loan_schedule",
    "loan_transactions",
    "loan_view",
    "nonaccrual_settings",
    "open_credit_line",
    "post_entry",
    "post_repayment",
    "rate_cap",
    "reconcile",
    "reconcile_in",
    "reconcile_loans",
    "reconcile_loans_in",
    "reject_booking",
    "reject_write_off",
    "repay_early",
    "request_hash",
    "request_write_off",
    "reverse_repayment",
    "set_bad_loan_settings",
    "set_nonaccrual_settings",
    "set_rate_cap",
    "setup_tenant",
    "trial_balance",
    "trial_balance_in",
    "update_product",
]
