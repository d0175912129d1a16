"""Periodic re-pulls of external data (贷后数据更新) on SQLite and PostgreSQL, against a provider server on
loopback: a run asks the sources of the borrowers whose consent covers post-loan monitoring and skips the
others, stops at its budget and leaves the rest for the next run, lets fresh borrowers be; an enforcement
case filed since the previous pull raises an alert through the scan, an old one does not; banks apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.conftest import Api, TenantKit
from tests.integration.decisioning.test_decisioning_api import open_line
from tests.provider_server import ProviderServer

from microlend.core import clock
from microlend.core.clock import FixedClock
from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.identity import Principal, system_principal
from microlend.core.tenancy import business_date
from microlend.data import provider_service
from microlend.data.gateway import Gateway
from microlend.data.providers import KINDS
from microlend.data.tables import ProviderCallRow
from microlend.origination import business_data
from microlend.origination import data_refresh as dr
from microlend.origination import early_warning as ew
from microlend.origination.tables import EarlyWarningAlertRow
from microlend.parties import queries as parties
from microlend.parties.tables import ConsentRow
from microlend.servicing.tables import CreditLineRow

PRICE = Decimal("1.50")


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    s = ProviderServer().start()
    yield s
    s.stop()


@pytest.fixture
def provider(server: ProviderServer) -> Iterator[ProviderServer]:
    server.calls.clear()
    server.answers.clear()
    gateway = Gateway()
    business_data.set_gateway(gateway)
    yield server
    business_data.set_gateway(None)
    gateway.close()


@pytest.fixture
def other(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def connect(api: Api, server: ProviderServer) -> None:
    admin = system_principal(api.kit.tenant.id, "admin")
    for kind in KINDS:
        provider_service.set_provider(api.kit.uow_factory(), admin, kind, provider_service.ProviderChanges(
            base_url=server.base_url, api_key="sandbox", cost_per_call=PRICE, timeout_ms=3000, retries=0,
            cache_ttl_seconds=0))


def borrower(api: Api, limit: str, *scopes: str, version: str = "2026-11") -> tuple[int, int]:
    """(customer, line): a borrower with an open credit line and these consents, given in their session."""
    line = open_line(api, limit, {})
    with api.kit.uow_factory() as u:
        customer = u.session.get(CreditLineRow, line).customer_id  # type: ignore[union-attr]
        assert customer is not None
        for scope in scopes:
            u.session.add(ConsentRow(tenant_id=api.kit.tenant.id, customer_id=customer, scope=scope,
                                     granted_at=datetime.now(UTC), granted_by="borrower", channel="self",
                                     text_version=f"{scope}/{version}"))
        u.commit()
    return customer, line


def subject_of(api: Api, customer: int) -> str:
    return parties.query_subject(api.kit.uow_factory(), system_principal(api.kit.tenant.id), customer)[0]


def refresh_calls(api: Api) -> list[ProviderCallRow]:
    with api.kit.uow_factory() as u:
        return list(u.session.execute(select(ProviderCallRow).where(
            ProviderCallRow.tenant_id == api.kit.tenant.id, ProviderCallRow.purpose == dr.PURPOSE)
            .order_by(ProviderCallRow.id)).scalars())


def today(api: Api) -> date:
    with api.kit.uow_factory() as u:
        return business_date(u.session, api.kit.tenant.id)


def age_calls(api: Api, days: int) -> None:
    """As if every recorded call had been made `days` earlier."""
    with api.kit.uow_factory() as u:
        for row in u.session.execute(select(ProviderCallRow).where(
                ProviderCallRow.tenant_id == api.kit.tenant.id)).scalars():
            row.at = row.at - timedelta(days=days)
        u.commit()


@pytest.fixture
def noon(monkeypatch: pytest.MonkeyPatch) -> Callable[[Api], date]:
    """Sets the clock at noon (UTC) of the bank's business date, so the calls are recorded on it (after the
    borrowers are set up through the API, whose tokens live in the real time)."""

    def at(api: Api) -> date:
        on = today(api)
        monkeypatch.setattr(clock, "_clock", FixedClock(datetime(on.year, on.month, on.day, 12, tzinfo=UTC)))
        return on

    return at


def system(api: Api) -> Principal:
    return system_principal(api.kit.tenant.id, "worker")


def test_a_run_asks_the_sources_a_post_loan_consent_covers_and_skips_the_rest(
        api: Api, provider: ProviderServer, noon: Callable[[Api], date]) -> None:
    connect(api, provider)
    covered, _ = borrower(api, "30000", "credit_report", "external_data")
    application_only, _ = borrower(api, "31000", "external_data")  # a text for the application only
    none, _ = borrower(api, "32000")
    at_noon = noon(api)
    run = dr.refresh(api.kit.uow_factory(), system(api))
    assert (run.borrowers, run.skipped_no_consent, run.due, run.refreshed, run.deferred) == (3, 2, 1, 1, 0)
    assert (run.calls, run.cost, run.statuses) == (2, 2 * PRICE, {"ok": 2})
    calls = refresh_calls(api)
    assert sorted(c.kind for c in calls) == ["bureau", "enforcement"]  # a person: no tax; merchant not covered
    assert {c.as_of for c in calls} == {at_noon} and {c.cost for c in calls} == {PRICE}
    assert provider.calls == {"bureau": 1, "enforcement": 1}
    again = dr.refresh(api.kit.uow_factory(), system(api))  # fresh now: nothing asked
    assert (again.due, again.fresh, again.calls) == (0, 1, 0) and len(refresh_calls(api)) == 2
    assert {covered, application_only, none} and provider.calls == {"bureau": 1, "enforcement": 1}


def test_a_source_failing_is_recorded_not_raised(api: Api, provider: ProviderServer,
                                                 noon: Callable[[Api], date]) -> None:
    connect(api, provider)
    borrower(api, "30000", "credit_report")
    noon(api)
    provider.faults["bureau"] = "error"
    try:
        run = dr.refresh(api.kit.uow_factory(), system(api))
    finally:
        provider.faults.clear()
    assert run.statuses == {"unavailable": 1, "ok": 1} and run.refreshed == 1
    assert {(c.kind, c.status) for c in refresh_calls(api)} == {("bureau", "unavailable"), ("enforcement", "ok")}


def test_the_budget_stops_a_run_and_the_next_one_goes_on(api: Api, provider: ProviderServer,
                                                         noon: Callable[[Api], date]) -> None:
    connect(api, provider)
    for limit in ("30000", "31000", "32000"):
        borrower(api, limit, "credit_report")
    noon(api)
    by_calls = dr.refresh(api.kit.uow_factory(), system(api), settings=dr.RefreshSettings(30, 3, Decimal("100")))
    assert (by_calls.refreshed, by_calls.deferred, by_calls.calls, by_calls.stopped_by_budget) == (1, 2, 2, True)
    by_cost = dr.refresh(api.kit.uow_factory(), system(api), settings=dr.RefreshSettings(30, 100, Decimal("2.99")))
    assert (by_cost.due, by_cost.refreshed, by_cost.deferred, by_cost.cost) == (2, 0, 2, Decimal(0))
    rest = dr.refresh(api.kit.uow_factory(), system(api))
    assert (rest.fresh, rest.refreshed, rest.deferred, rest.calls) == (1, 2, 0, 4)
    assert len(refresh_calls(api)) == 6


def test_the_stalest_borrowers_go_first(api: Api, provider: ProviderServer, noon: Callable[[Api], date]) -> None:
    connect(api, provider)
    first, _ = borrower(api, "30000", "credit_report")
    second, _ = borrower(api, "31000", "credit_report")
    at_noon = noon(api)
    dr.refresh(api.kit.uow_factory(), system(api))
    with api.kit.uow_factory() as u:  # the second borrower's answers are older than the first's
        index = u.session.execute(select(ProviderCallRow.subject_index).order_by(ProviderCallRow.id.desc())).scalar()
        u.session.execute(update(ProviderCallRow).where(ProviderCallRow.subject_index == index).values(
            at=datetime.combine(at_noon - timedelta(days=50), datetime.min.time(), tzinfo=UTC)))
        u.commit()
    age_calls(api, 35)
    run = dr.refresh(api.kit.uow_factory(), system(api), settings=dr.RefreshSettings(30, 2, Decimal("100")))
    assert (run.refreshed, run.deferred) == (1, 1)
    newest = refresh_calls(api)[-1]
    assert newest.subject_index == index and first != second


def test_an_enforcement_case_filed_since_the_last_pull_raises_an_alert(
        api: Api, provider: ProviderServer, noon: Callable[[Api], date]) -> None:
    connect(api, provider)
    customer, line = borrower(api, "30000", "credit_report")
    at_noon = noon(api)
    subject = subject_of(api, customer)
    old = {"case_no": "(2026)浙0102执1号", "filed_on": "2026-01-05", "amount": "50000.00", "status": "open",
           "dishonest": False}
    provider.answers[("enforcement", subject)] = {"cases": [old]}
    dr.refresh(api.kit.uow_factory(), system(api))
    age_calls(api, 31)
    dr.refresh(api.kit.uow_factory(), system(api))  # the same open case again
    approver = api.kit.principal("approver")
    ew.scan(api.kit.uow_factory(), approver)
    with api.kit.uow_factory() as u:
        signals = set(u.session.execute(select(EarlyWarningAlertRow.signal).where(
            EarlyWarningAlertRow.tenant_id == api.kit.tenant.id)).scalars())
    assert "enforcement_case" not in signals  # known before: no alert at every scan
    new = {**old, "case_no": "(2026)浙0102执77号", "filed_on": (at_noon - timedelta(days=3)).isoformat()}
    provider.answers[("enforcement", subject)] = {"cases": [old, new]}
    provider.answers[("bureau", subject)] = {"overdue_accounts_now": 1, "max_overdue_level_24m": 1}
    age_calls(api, 31)
    run = dr.refresh(api.kit.uow_factory(), system(api))
    assert run.refreshed == 1
    ew.scan(api.kit.uow_factory(), approver)
    with api.kit.uow_factory() as u:
        raised = {a.signal: a for a in u.session.execute(select(EarlyWarningAlertRow).where(
            EarlyWarningAlertRow.tenant_id == api.kit.tenant.id)).scalars()}
    alert = raised["enforcement_case"]
    assert (alert.subject_id, alert.severity, alert.inputs["enforcement.cases_open"]) == (line, "medium", 1)
    assert (raised["bureau_overdue"].severity, raised["bureau_overdue"].inputs) == (
        "medium", {"bureau.overdue_now": 1})


def test_banks_are_apart(api: Api, other: Api, provider: ProviderServer, noon: Callable[[Api], date]) -> None:
    connect(api, provider)
    connect(other, provider)
    borrower(api, "30000", "credit_report")
    noon(api)
    elsewhere = dr.refresh(other.kit.uow_factory(), system(other))
    assert (elsewhere.borrowers, elsewhere.calls) == (0, 0) and provider.calls == {}
    admin = api.kit.principal("admin")
    dr.update_refresh_settings(api.kit.uow_factory(), admin, dr.RefreshSettings(7, 10, Decimal("50.00")))
    assert dr.refresh_settings(other.kit.uow_factory(), other.kit.principal("admin")) == dr.DEFAULT_SETTINGS
    mine = dr.refresh_settings(api.kit.uow_factory(), admin)
    assert (mine.every_days, mine.max_calls, mine.max_cost, mine.updated_by) == (7, 10, Decimal("50.00"),
                                                                                 admin.username)
    assert dr.refresh(api.kit.uow_factory(), system(api)).calls == 2 and refresh_calls(other) == []


def test_settings_are_checked_and_kept_to_who_manages_data_sources(api: Api) -> None:
    admin = api.kit.principal("admin")
    for bad in (dr.RefreshSettings(0, 10, Decimal("1")), dr.RefreshSettings(30, 0, Decimal("1")),
                dr.RefreshSettings(30, 10, Decimal("0")), dr.RefreshSettings(30, 10, Decimal("1.001")),
                dr.RefreshSettings(366, 10, Decimal("1"))):
        with pytest.raises(ValidationError):
            dr.update_refresh_settings(api.kit.uow_factory(), admin, bad)
    for role in ("credit_officer", "approver"):
        with pytest.raises(PermissionDenied):
            dr.update_refresh_settings(api.kit.uow_factory(), api.kit.principal(role), dr.DEFAULT_SETTINGS)
    with pytest.raises(PermissionDenied):
        dr.refresh(api.kit.uow_factory(), api.kit.principal("marketer"))
    assert dr.refresh_settings(api.kit.uow_factory(), admin) == dr.DEFAULT_SETTINGS
