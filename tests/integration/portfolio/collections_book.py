"""A small collections book whose performance figures were worked out by hand (January to March 2025).

Collectors Alice and Bob (staff users); cases assigned by a manager.

Case 1 on loan L1: opened 5 Jan, assigned to Alice 6 Jan, reassigned to Bob 10 Feb, closed cured 20 Feb.
  Repayments on L1: 3 Jan 100.00 (before any assignment: nobody's), 20 Jan 150.00 (Alice), 25 Jan 99.00 reversed
  (nobody's), 10 Feb 40.00 (the day of the reassignment: Bob's), 15 Feb 60.00 (Bob), 25 Feb 500.00 (after the
  close: nobody's).
Case 2 on loan L2: opened 10 Jan, assigned to Bob 11 Jan, re-routed to another team (unassigned) 1 Mar, open.
  Repayments on L2: 1 Feb 30.00 (Bob), 5 Mar 70.00 (after the re-route: nobody's).
Case 3 on loan L3: opened 1 Mar, assigned to Alice 2 Mar, closed written off 20 Mar.

Work (contacts by outcome; promises with their status):
Alice  Jan case 1: contact no_answer, contact promise, promise 150.00 kept, note; a refused contact (not counted)
       Feb case 2: contact refused, promise 200.00 broken
       Mar case 3: escalation
Bob    Jan case 2: contact wrong_number, promise 30.00 kept
       Feb case 1: contact promise, promise 100.00 kept, promise 25.00 lapsed (the case closed before its date)
       Mar case 2: promise 80.00 pending
Another bank's case, work and repayment must count nowhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import update
from tests.conftest import TenantKit
from tests.integration.portfolio.hand_book import Loan, put_loans

from microlend.core.tables import UserRow
from microlend.servicing.collection_tables import CollectionActionRow, CollectionCaseRow
from microlend.servicing.tables import RepaymentRow

D = date
LOANS: dict[str, Loan] = {f"L{i}": (D(2024, 11, 1), "active", None, [(D(2024, 12, 1), None)]) for i in (1, 2, 3)}
#: Repayments by loan: (value date, amount, status).
REPAYMENTS = {
    "L1": [(D(2025, 1, 3), "100.00", "posted"), (D(2025, 1, 20), "150.00", "posted"),
           (D(2025, 1, 25), "99.00", "reversed"), (D(2025, 2, 10), "40.00", "posted"),
           (D(2025, 2, 15), "60.00", "posted"), (D(2025, 2, 25), "500.00", "posted")],
    "L2": [(D(2025, 2, 1), "30.00", "posted"), (D(2025, 3, 5), "70.00", "posted")],
}


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def seed(kit: TenantKit, names: tuple[str, str] = ("Alice Wang", "Bob Li")) -> dict[str, str]:
    """The book in the kit's bank; returns the collectors' usernames by "alice" / "bob"."""
    alice, _ = kit.user("collector")
    bob, _ = kit.user("collector")
    boss, _ = kit.user("operations")
    uow = kit.uow_factory()
    loans = put_loans(uow, kit.tenant.id, LOANS)
    t = kit.tenant.id
    with uow:
        s = uow.session
        for username, name in zip((alice, bob), names, strict=True):
            s.execute(update(UserRow).where(UserRow.username == username).values(display_name=name))

        def case(loan: str, opened: date, assignee: str | None, closed: date | None, reason: str | None) -> int:
            row = CollectionCaseRow(
                tenant_id=t, loan_id=loans[loan], customer_id=None, branch="", status="closed" if closed else "open",
                bucket="M1", days_past_due=10, amount_overdue=Decimal("110.00"), queue="early", next_action="call",
                assignee=assignee, escalation=0, registered_contacts=[], opened_on=opened, closed_on=closed,
                close_reason=reason, created_at=at(opened), updated_at=at(opened))
            s.add(row)
            s.flush()
            return row.id

        c1 = case("L1", D(2025, 1, 5), bob, D(2025, 2, 20), "cured")
        c2 = case("L2", D(2025, 1, 10), None, None, None)
        c3 = case("L3", D(2025, 3, 1), alice, D(2025, 3, 20), "written_off")

        def act(case_id: int, actor: str, day: date, kind: str, *, outcome: str | None = None,
                party: str | None = None, amount: str | None = None, status: str | None = None) -> None:
            s.add(CollectionActionRow(
                tenant_id=t, case_id=case_id, kind=kind, channel="call" if kind in ("contact", "blocked") else None,
                party=party or ("borrower" if kind in ("contact", "blocked") else None), outcome=outcome,
                amount=None if amount is None else Decimal(amount), promise_date=day if amount else None,
                promise_status=status, promised_on=day if amount else None, text="", actor=actor, at=at(day)))

        act(c1, boss, D(2025, 1, 6), "assign", party=alice)
        act(c1, alice, D(2025, 1, 6), "contact", outcome="no_answer")
        act(c1, alice, D(2025, 1, 7), "contact", outcome="promise")
        act(c1, alice, D(2025, 1, 7), "promise", amount="150.00", status="kept")
        act(c1, alice, D(2025, 1, 8), "note")
        act(c1, alice, D(2025, 1, 9), "blocked")
        act(c2, boss, D(2025, 1, 11), "assign", party=bob)
        act(c2, bob, D(2025, 1, 12), "contact", outcome="wrong_number")
        act(c2, bob, D(2025, 1, 12), "promise", amount="30.00", status="kept")
        act(c2, alice, D(2025, 2, 3), "contact", outcome="refused")
        act(c2, alice, D(2025, 2, 3), "promise", amount="200.00", status="broken")
        act(c1, boss, D(2025, 2, 10), "assign", party=bob)
        act(c1, bob, D(2025, 2, 11), "contact", outcome="promise")
        act(c1, bob, D(2025, 2, 11), "promise", amount="100.00", status="kept")
        act(c1, bob, D(2025, 2, 12), "promise", amount="25.00", status="closed")
        act(c1, "collections", D(2025, 2, 20), "close", outcome="cured")
        act(c3, boss, D(2025, 3, 2), "assign", party=alice)
        act(c3, alice, D(2025, 3, 3), "escalation")
        act(c2, bob, D(2025, 3, 2), "promise", amount="80.00", status="pending")
        act(c3, "collections", D(2025, 3, 20), "close", outcome="written_off")
        for loan, rows in REPAYMENTS.items():
            for n, (day, amount, status) in enumerate(rows):
                s.add(RepaymentRow(tenant_id=t, loan_id=loans[loan], kind="repayment", amount=Decimal(amount),
                                   value_date=day, idempotency_key=f"{loan}-{n}", allocation={}, status=status,
                                   journal_entry_id=0, created_by="test", created_at=at(day)))
        # the re-route of case 2 to another team on 1 March (the case is left unassigned)
        act(c2, "collections", D(2025, 3, 1), "reroute")
        uow.commit()
    return {"alice": alice, "bob": bob}


def seed_other_bank(kit: TenantKit) -> None:
    """Another bank's collector, case, work and repayment in the same months."""
    carol, _ = kit.user("collector")
    uow = kit.uow_factory()
    loans = put_loans(uow, kit.tenant.id, {"X": LOANS["L1"]})
    t = kit.tenant.id
    with uow:
        s = uow.session
        row = CollectionCaseRow(
            tenant_id=t, loan_id=loans["X"], customer_id=None, branch="", status="closed", bucket="M1",
            days_past_due=10, amount_overdue=Decimal("110.00"), queue="early", next_action="", assignee=carol,
            escalation=0, registered_contacts=[], opened_on=D(2025, 1, 2), closed_on=D(2025, 2, 2),
            close_reason="cured", created_at=at(D(2025, 1, 2)), updated_at=at(D(2025, 2, 2)))
        s.add(row)
        s.flush()
        s.add(CollectionActionRow(tenant_id=t, case_id=row.id, kind="assign", party=carol, text="", actor=carol,
                                  at=at(D(2025, 1, 2))))
        s.add(CollectionActionRow(tenant_id=t, case_id=row.id, kind="contact", channel="call", party="borrower",
                                  outcome="promise", text="", actor=carol, at=at(D(2025, 1, 3))))
        s.add(CollectionActionRow(tenant_id=t, case_id=row.id, kind="promise", amount=Decimal("10.00"),
                                  promise_date=D(2025, 1, 9), promise_status="kept", promised_on=D(2025, 1, 3),
                                  text="", actor=carol, at=at(D(2025, 1, 3))))
        s.add(RepaymentRow(tenant_id=t, loan_id=loans["X"], kind="repayment", amount=Decimal("10.00"),
                           value_date=D(2025, 1, 9), idempotency_key="x-0", allocation={}, status="posted",
                           journal_entry_id=0, created_by="test", created_at=at(D(2025, 1, 9))))
        uow.commit()
