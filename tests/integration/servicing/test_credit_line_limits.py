"""Changing a credit line's limit: raised within the product, lowered even below what is drawn, audited with
the reason, refused for another bank's line, a closed line or a role without the permission."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D  # noqa: N817

import pytest
from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.core.tables import AuditRow
from microlend.servicing import service
from microlend.servicing.tables import CreditLineRow


def limit_audits(bank: Bank, line_id: int) -> list[AuditRow]:
    with bank.uow() as u:
        rows = u.session.execute(select(AuditRow).where(
            AuditRow.action == "credit_line.change_limit", AuditRow.object_id == str(line_id))).scalars().all()
        for r in rows:
            u.session.expunge(r)
        return list(rows)


class TestChangingALimit:
    def test_an_increase_is_applied_and_audited_with_its_reason(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        view = service.change_credit_line_limit(bank.uow(), bank.who, line.id, D("50000.00"), "good behaviour")
        assert view.limit == D("50000.00")
        [entry] = limit_audits(bank, line.id)
        assert entry.reason == "good behaviour"
        assert entry.before == {"limit": "40000.00"} and entry.after == {"limit": "50000.00"}

    def test_a_decrease_may_go_below_what_is_drawn(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        service.draw_down(bank.uow(), bank.who, line.id, D("10000"))
        view = service.change_credit_line_limit(bank.uow(), bank.who, line.id, D("5000"), "early warning")
        assert view.limit == D("5000") and view.drawn == D("10000.00") and view.available == 0

    def test_an_increase_above_the_product_maximum_is_refused(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        with pytest.raises(ValidationError, match="maximum"):
            service.change_credit_line_limit(bank.uow(), bank.who, line.id, D("999999999"), "too much")
        assert limit_audits(bank, line.id) == []

    @pytest.mark.parametrize("value", [D("-1"), D("100.001")])
    def test_a_negative_or_sub_cent_limit_is_refused(self, bank: Bank, value: D) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        with pytest.raises(ValidationError, match="new_limit"):
            service.change_credit_line_limit(bank.uow(), bank.who, line.id, value, "x")

    def test_a_reason_is_required(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        with pytest.raises(ValidationError, match="reason"):
            service.change_credit_line_limit(bank.uow(), bank.who, line.id, D("30000"), " ")

    def test_a_closed_line_cannot_change(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        with bank.uow() as u:
            row = u.session.get(CreditLineRow, line.id)
            assert row is not None
            row.status = "closed"
            u.commit()
        with pytest.raises(Conflict):
            service.change_credit_line_limit(bank.uow(), bank.who, line.id, D("30000"), "x")

    def test_another_banks_line_is_not_found(self, bank: Bank, other_bank: Callable[[], Bank]) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        other = other_bank()
        with pytest.raises(NotFound):
            service.change_credit_line_limit(other.uow(), other.who, line.id, D("30000"), "x")

    def test_a_collector_may_not_change_a_limit(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        with pytest.raises(PermissionDenied):
            service.change_credit_line_limit(bank.uow(), bank.principal(Role.COLLECTOR), line.id, D("1"), "x")
