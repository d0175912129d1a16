"""What other modules may read about customers: views within the caller's bank, never another bank's."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select
from tests.conftest import TenantKit

from microlend.core.errors import NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.demo import identities
from microlend.parties import queries
from microlend.parties.consent_texts import current
from microlend.parties.consents import Evidence, record_in_session
from microlend.parties.customers import NewCustomer, create_customer
from microlend.parties.tables import ConsentRow

_rng = random.Random(11)


def _customer(kit: TenantKit, name: str, *, branch: str = "城关支行", consent: bool = False) -> int:
    birth = identities.birth_date_for_age(_rng, 40, date(2026, 1, 1))
    made = create_customer(kit.uow_factory(), kit.principal("credit_officer"), NewCustomer(
        kind="person", name=name, id_number=identities.resident_id(_rng, birth), phone=identities.mobile(_rng),
        branch=branch, marketing_consent=consent, attributes={"annual_income": 120000}))
    return made.id


@pytest.fixture
def two_banks(new_tenant: Callable[[], TenantKit]) -> tuple[TenantKit, TenantKit]:
    return new_tenant(), new_tenant()


class TestCustomerViews:
    def test_a_customer_is_seen_without_personal_data(self, two_banks: tuple[TenantKit, TenantKit]) -> None:
        bank, _ = two_banks
        cid = _customer(bank, "李四")
        view = queries.customer(bank.uow_factory(), bank.principal("credit_officer"), cid)
        assert (view.id, view.name, view.kind, view.branch) == (cid, "李四", "person", "城关支行")
        assert view.attributes == {"annual_income": 120000}
        assert not hasattr(view, "id_number") and not hasattr(view, "phone")

    def test_another_banks_customer_is_not_found_and_left_out(self, two_banks: tuple[TenantKit, TenantKit]) -> None:
        bank, other = two_banks
        theirs = _customer(other, "王五")
        mine = _customer(bank, "赵六", consent=True)
        who = bank.principal("credit_officer")
        with pytest.raises(NotFound):
            queries.customer(bank.uow_factory(), who, theirs)
        assert queries.customer_names(bank.uow_factory(), who, [mine, theirs]) == {mine: "赵六"}
        assert queries.marketing_consented(bank.uow_factory(), who, [mine, theirs]) == {mine}
        assert set(queries.contact_cards(bank.uow_factory(), who, [mine, theirs])) == {mine}
        assert queries.customer_count(bank.uow_factory(), who) == 1

    def test_the_batch_read_holds_each_customer_of_the_bank_once(
        self, two_banks: tuple[TenantKit, TenantKit]
    ) -> None:
        bank, other = two_banks
        ids = [_customer(bank, "甲", consent=True), _customer(bank, "乙", branch="城南支行")]
        _customer(other, "丙")
        customers = queries.all_customers(bank.uow_factory(), bank.principal("marketer"))
        assert [c.id for c in customers] == sorted(ids)
        assert [c.marketing_consent for c in customers] == [True, False]
        assert customers[0].attributes == {"annual_income": 120000}


class TestConsents:
    def test_a_borrower_gives_each_scope_once_in_session_and_an_unknown_one_is_refused(self, bank: TenantKit) -> None:
        cid = _customer(bank, "钱七")
        me = Principal(user_id=0, tenant_id=bank.tenant.id, username="qian", roles=frozenset({Role.BORROWER}),
                       customer_id=cid)
        uow = bank.uow_factory()
        with pytest.raises(ValidationError, match="unknown scope 'gossip'"):
            record_in_session(uow, me, cid, ["gossip"], locale="zh_CN", evidence=Evidence())
        with uow:
            record_in_session(uow, me, cid, ["credit_report", "credit_report", "marketing"], locale="en",
                              evidence=Evidence(session_id="s-1", ip="10.0.0.1", user_agent="phone"))
            uow.commit()
        with uow:
            rows = list(uow.session.execute(select(ConsentRow).where(ConsentRow.customer_id == cid)).scalars())
        assert sorted(r.scope for r in rows) == ["credit_report", "marketing"]
        assert {r.channel for r in rows} == {"self"} and rows[0].evidence["session_id"] == "s-1"
        assert {r.text_hash for r in rows} == {current(r.scope).sha256("en") for r in rows}
        officer = bank.principal("credit_officer")
        assert queries.consented_scopes(bank.uow_factory(), officer, cid) == {"credit_report", "marketing"}
        assert queries.has_consent(bank.uow_factory(), officer, cid, "credit_report")
        assert queries.marketing_consented(bank.uow_factory(), officer, [cid]) == {cid}

    def test_staff_cannot_record_a_consent_for_the_borrower(self, bank: TenantKit) -> None:
        cid = _customer(bank, "孙八")
        uow = bank.uow_factory()
        with uow, pytest.raises(PermissionDenied, match="given by the borrower"):
            record_in_session(uow, bank.principal("credit_officer"), cid, ["credit_report"], locale="zh_CN",
                              evidence=Evidence())
        assert not queries.has_consent(bank.uow_factory(), bank.principal("credit_officer"), cid, "credit_report")
