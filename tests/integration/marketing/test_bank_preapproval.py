"""Pre-approval over the bank's own customers runs the live credit rules: the champion model, the published
policy, and the same arrears, blacklist, exposure and capacity facts as a live decision (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.conftest import Api, TenantKit
from tests.integration.origination.test_applications_api import GOOD_ROW, apply, new_customer
from tests.signing import accept_by_code, consent_by_code
from typer.testing import CliRunner

from microlend.cli import marketing as marketing_cli
from microlend.core import crypto
from microlend.core.clock import utcnow
from microlend.core.settings import get_settings
from microlend.data.tables import ProviderCallRow
from microlend.demo import identities
from microlend.demo.sandbox import KINDS, payload, subject_with
from microlend.marketing import service
from microlend.marketing.bank_preapproval import run_bank_preapproval
from microlend.marketing.preapproval import OfferParameters
from microlend.marketing.tables import PreapprovalRunRow
from microlend.parties.tables import CustomerRow
from microlend.servicing.tables import LoanRow

_rng = random.Random(2121)
PARAMS = OfferParameters(product_code="EI-STD", requested_amount=Decimal("200000"), term_months=12)


def _today(api: Api) -> date:
    return utcnow().date()


def _run(api: Api, **kwargs: Any) -> tuple[int, dict[int, Any]]:
    who = api.kit.principal("marketer")
    summary = run_bank_preapproval(api.kit.uow_factory(), who, as_of=_today(api), started_at=utcnow(),
                                   params=PARAMS, **kwargs)
    offers = service.list_offers(api.kit.uow_factory(), who, summary.run_id)
    return summary.run_id, {o.customer_id: o for o in offers}


def _borrower(api: Api, amount: str = "30000.00", turnover: str = "600000") -> tuple[int, int]:
    """A customer with an active loan: (customer id, loan id)."""
    customer = new_customer(api, GOOD_ROW, turnover)
    app = apply(api, customer, amount).json()
    assert app["status"] == "approved", app
    done = accept_by_code(api, app["id"]).json()
    assert done["status"] == "disbursed", done
    return customer, int(done["loan_id"])


def _ready(api: Api, turnover: str = "600000") -> int:
    """A customer with no loan who gave the credit-report consent (as a live decision needs)."""
    customer = new_customer(api, GOOD_ROW, turnover)
    consent_by_code(api, customer, "credit_report")
    return customer


def _set_attr(api: Api, customer_id: int, **values: Any) -> None:
    with api.kit.uow_factory() as u:
        row = u.session.get(CustomerRow, customer_id)
        assert row is not None
        row.attributes = {**dict(row.attributes or {}), **values}
        u.commit()


class TestLiveRules:
    def test_an_overdue_customer_gets_no_offer(self, api: Api) -> None:
        late, late_loan = _borrower(api)
        fine, _ = _borrower(api)
        with api.kit.uow_factory() as u:
            u.session.execute(update(LoanRow).where(LoanRow.id == late_loan).values(days_past_due=35))
            u.commit()
        _, offers = _run(api)
        assert fine in offers
        assert late not in offers

    def test_a_blacklisted_customer_loses_the_offer_on_a_rerun(self, api: Api) -> None:
        customer = _ready(api)
        first, offers = _run(api)
        assert customer in offers
        _set_attr(api, customer, blacklisted=True)
        second, offers = _run(api)
        assert second != first  # the blacklist flag is among the inputs: a new run, not the old one returned
        assert customer not in offers

    def test_the_exposure_is_netted_and_the_offer_stays_within_the_turnover_share(self, api: Api) -> None:
        # a turnover of 100,000 at the bank's multiple of 0.5 allows 50,000 of exposure in all
        free = _ready(api, turnover="100000")
        owing, _ = _borrower(api, "30000.00", turnover="100000")
        _, offers = _run(api)
        assert offers[free].limit == Decimal("50000")
        assert offers[owing].limit <= Decimal("20000")  # 50,000 less the 30,000 outstanding
        assert offers[owing].limit > 0

    def test_the_run_states_the_champion_model_and_the_published_policy(self, api: Api) -> None:
        _ready(api)
        run_id, _ = _run(api)
        with api.kit.uow_factory() as u:
            run = u.session.get(PreapprovalRunRow, run_id)
            assert run is not None
            assert run.model_version.startswith("german_credit_starter") or " v" in run.model_version
            assert run.policy_version.startswith("default_micro_loan@")


@pytest.fixture
def shop_bank(app_client: Any, new_tenant: Callable[..., TenantKit]) -> Api:
    """A bank as shipped: the expert micro-business scorecard is its champion."""
    return Api(app_client, new_tenant("expert"))


def _business(api: Api, turnover: str, profile: str = "good") -> int:
    """A shop that gave the credit-report consent and whose data sources the bank asked before (their recorded
    answers, as the provider sandboxes give them)."""
    uscc = subject_with(profile, _rng, kind="business")
    birth = identities.birth_date_for_age(_rng, 42, date(2026, 1, 1))
    body = {"kind": "business", "name": "城关镇小卖部", "id_number": uscc, "phone": identities.mobile(_rng),
            "industry": "retail", "branch": "城关支行",
            "attributes": {"annual_turnover": turnover, "years_in_business": 6, "owner_birth_date": birth.isoformat()}}
    r = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    customer = int(r.json()["id"])
    consent_by_code(api, customer, "credit_report")
    today, now = _today(api), utcnow()
    with api.kit.uow_factory() as u:
        for kind in KINDS:
            text = json.dumps(payload(kind, uscc, today, seed=0, anchor=today), ensure_ascii=False)
            u.session.add(ProviderCallRow(
                tenant_id=api.kit.tenant.id, kind=kind, subject_index=crypto.blind_index(uscc),
                subject_masked=crypto.mask(uscc), subject_kind="business", as_of=today, purpose="credit application",
                application_id=None, called_by="decision-engine", at=now, status="ok", latency_ms=1,
                cost=Decimal("0.50"), currency="CNY", cached=False, http_status=200, error=None,
                payload=crypto.encrypt(text), payload_sha256=hashlib.sha256(text.encode()).hexdigest()))
        u.commit()
    return customer


class TestSmallBusinesses:
    def test_business_customers_get_offers(self, shop_bank: Api) -> None:
        shops = [_business(shop_bank, "600000") for _ in range(4)]
        _, offers = _run(shop_bank)
        # good shops score around the 560 cut-off of the grey band (referred, no offer); most are above it
        assert len(set(shops) & set(offers)) >= 2
        for offer in offers.values():
            assert 0 < offer.limit <= Decimal("300000")

    def test_no_offer_exceeds_the_share_of_annual_turnover(self, shop_bank: Api) -> None:
        turnovers = {_business(shop_bank, t): Decimal(t) for t in ("40000", "90000", "260000", "600000")}
        _, offers = _run(shop_bank)
        assert offers, "a good shop gets an offer"
        for customer, offer in offers.items():
            assert offer.limit <= turnovers[customer] * Decimal("0.5")  # the bank's turnover multiple

    def test_a_shop_overdue_elsewhere_in_its_credit_report_gets_no_offer(self, shop_bank: Api) -> None:
        good = [_business(shop_bank, "600000") for _ in range(3)]
        late = _business(shop_bank, "600000", profile="overdue")
        _, offers = _run(shop_bank)
        assert set(good) & set(offers)
        assert late not in offers


def test_the_offers_list_gives_the_latest_run_when_none_is_named(api: Api) -> None:
    customer = _ready(api)
    run_id, _ = _run(api)
    listed = service.list_offers(api.kit.uow_factory(), api.kit.principal("marketer"))
    assert [(o.customer_id, o.run_id) for o in listed] == [(customer, run_id)]
    assert listed[0].expires_on == _today(api).fromordinal(_today(api).toordinal() + PARAMS.offer_days)




class TestCommandLine:
    @pytest.fixture
    def cli(self, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
        monkeypatch.setenv("MICROLEND_DATABASE_URL", db_url)
        get_settings.cache_clear()
        yield CliRunner()
        get_settings.cache_clear()

    def test_preapprove_without_data_runs_over_the_banks_customers_and_offers_lists_them(
            self, api: Api, cli: CliRunner) -> None:
        customer = _ready(api)
        bank = api.kit.tenant.name
        result = cli.invoke(marketing_cli.app, ["preapprove", "--tenant", bank, "--as-of", _today(api).isoformat()])
        assert result.exit_code == 0, result.output
        assert "model german_credit_starter" in result.output or "model " in result.output
        assert "policy default_micro_loan@" in result.output
        listed = cli.invoke(marketing_cli.app, ["offers", "--tenant", bank, "--json"])
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.output)
        assert [r["customer_id"] for r in rows] == [customer]
        assert set(rows[0]) == {"customer_id", "limit", "annual_rate", "expires_on", "run_id"}
        assert Decimal(rows[0]["limit"]) > 0
        named = cli.invoke(marketing_cli.app, ["offers", "--tenant", bank, "--run", str(rows[0]["run_id"]), "--json"])
        assert json.loads(named.output) == rows
        missing = cli.invoke(marketing_cli.app, ["offers", "--tenant", bank, "--run", "999999"])
        assert missing.exit_code == 2 and "Traceback" not in missing.output

    def test_synthetic_data_is_refused_in_a_bank_with_real_customers(self, api: Api, cli: CliRunner) -> None:
        _ready(api)
        result = cli.invoke(marketing_cli.app, ["preapprove", "--tenant", api.kit.tenant.name, "--as-of",
                                                "2026-03-01", "--synthetic", "50"])
        assert result.exit_code == 2
        assert "real customers" in result.output
        with api.kit.uow_factory() as u:
            runs = u.session.execute(select(PreapprovalRunRow).where(
                PreapprovalRunRow.tenant_id == api.kit.tenant.id)).scalars().all()
        assert runs == []
