from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select

from microlend.batch.engine import LocalEngine
from microlend.core.identity import Role
from microlend.decisioning.policy import CompiledPolicy, default_policy, outputs_from_engine
from microlend.marketing import service
from microlend.marketing.preapproval import (
    OfferParameters,
    PreapprovalInputs,
    _customer_table,
    default_policy_facts,
    default_scorer,
    offer_apr,
    run_preapproval,
)
from microlend.marketing.synthetic import customer_base
from microlend.marketing.tables import OfferRow, PreapprovalRunRow

from .conftest import Bank, make_bank

AS_OF = date(2026, 3, 1)
AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
N = 3000


@pytest.fixture(scope="module")
def base() -> PreapprovalInputs:
    tables, profile = customer_base(N, seed=11, as_of=AS_OF)
    return PreapprovalInputs(tables, profile)


def _offers(mbank: Bank, run_id: int) -> list[tuple[Any, ...]]:
    with mbank.uow() as u:
        return [tuple(r) for r in u.session.execute(
            select(OfferRow.customer_id, OfferRow.limit, OfferRow.annual_rate, OfferRow.apr, OfferRow.expires_on,
                   OfferRow.risk_grade).where(OfferRow.run_id == run_id).order_by(OfferRow.customer_id)).all()]


class Interrupted(Exception):
    pass


class TestPreapprovalRun:
    def test_offers_match_the_rule_engine_row_by_row(self, mbank: Bank, base: PreapprovalInputs) -> None:
        summary = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=1000)
        assert summary.status == "completed" and summary.customers_total == N
        offers = {o[0]: o for o in _offers(mbank, summary.run_id)}
        assert len(offers) == summary.offers > 0
        # the reference: the rule engine itself on a sample of customers, one at a time
        table = pl.from_arrow(_customer_table(base, AS_OF, LocalEngine()))
        assert isinstance(table, pl.DataFrame)
        sample = table.sample(300, seed=5)
        scores = default_scorer()(sample.to_pandas())
        facts = default_policy_facts(sample, scores, OfferParameters())
        engine = CompiledPolicy(default_policy())
        for i, cid in enumerate(sample.get_column("customer_id").to_list()):
            context: dict[str, Any] = {}
            for path, col in facts.items():
                head, leaf = path.split(".")
                value = None if col.null[i] else col.data[i]
                if isinstance(value, np.generic):
                    value = value.item()
                context.setdefault(head, {})[leaf] = value
            result = outputs_from_engine(engine.evaluate_raw(context)["result"])
            if result.outcome == "approve" and result.limit > 0:
                assert cid in offers
                assert offers[cid][1] == result.limit
                assert offers[cid][2] == result.annual_rate
            else:
                assert cid not in offers

    def test_the_same_inputs_give_the_same_run_and_offers(self, mbank: Bank, base: PreapprovalInputs) -> None:
        first = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=700)
        again = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=700)
        assert again.run_id == first.run_id and again.resumed and again.offers == first.offers
        assert len(_offers(mbank, first.run_id)) == first.offers

    def test_a_killed_run_resumes_without_duplicates(self, mbank: Bank, base: PreapprovalInputs) -> None:
        calls = []

        def die_after_two_chunks(done: int, total: int | None) -> None:
            calls.append(done)
            if len(calls) == 2:
                raise Interrupted

        with pytest.raises(Interrupted):
            run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=500,
                            progress=die_after_two_chunks)
        with mbank.uow() as u:
            run = u.session.execute(select(PreapprovalRunRow).where(
                PreapprovalRunRow.tenant_id == mbank.tenant_id)).scalar_one()
            assert (run.status, run.customers_done) == ("running", 1000)
        resumed = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=500)
        assert resumed.resumed and resumed.run_id == run.id and resumed.status == "completed"
        resumed_offers = _offers(mbank, resumed.run_id)
        assert len({o[0] for o in resumed_offers}) == len(resumed_offers) == resumed.offers
        # an uninterrupted run in another bank gives exactly the same offers
        other = make_bank(mbank.engine)
        fresh = run_preapproval(other.uow(), other.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=500)
        assert fresh.run_id != resumed.run_id and not fresh.resumed
        assert _offers(other, fresh.run_id) == resumed_offers

    def test_a_segment_limits_who_gets_an_offer(self, mbank: Bank, base: PreapprovalInputs) -> None:
        service.save_segment(mbank.uow(), mbank.who(), "mature", "age >= 40 and months_on_book > 12", at=AT)
        summary = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT,
                                  segment_name="mature", chunk_rows=1000)
        table = pl.from_arrow(_customer_table(base, AS_OF, LocalEngine()))
        assert isinstance(table, pl.DataFrame)
        members = set(table.filter((pl.col("age") >= 40) & (pl.col("months_on_book") > 12))
                      .get_column("customer_id").to_list())
        assert summary.customers_in_segment == len(members)
        assert {o[0] for o in _offers(mbank, summary.run_id)} <= members

    def test_offers_carry_expiry_apr_and_versions(self, mbank: Bank, base: PreapprovalInputs) -> None:
        params = OfferParameters(offer_days=14, upfront_fee_rate=Decimal("0.01"))
        summary = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, params=params)
        with mbank.uow() as u:
            row = u.session.execute(select(OfferRow).where(OfferRow.run_id == summary.run_id).limit(1)).scalar_one()
            count = u.session.execute(select(func.count()).select_from(OfferRow).where(
                OfferRow.run_id == summary.run_id)).scalar_one()
        assert row.expires_on == date(2026, 3, 15)
        assert row.apr == offer_apr(row.annual_rate, 12, Decimal("0.01")) > row.annual_rate
        assert row.model_version.startswith("starter-german-credit@") and len(row.policy_version) == 16
        assert count == summary.offers

    def test_then_a_campaign_offers_the_figures(self, mbank: Bank, base: PreapprovalInputs) -> None:
        summary = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT)
        camp = service.create_campaign(mbank.uow(), mbank.who(), service.CampaignSpec(
            name="offers", channel="sms", run_id=summary.run_id, control_share_bp=1000, locale="en"), at=AT)
        profile = pl.from_arrow(base.profile)
        assert isinstance(profile, pl.DataFrame)
        customers = profile.with_columns(pl.lit(0).alias("current_days_past_due"))
        launched = service.launch_campaign(mbank.uow(), mbank.who(), camp.id, customers, at=AT, bank_name="Demo")
        assert launched.targeted == summary.offers
        from microlend.marketing.tables import OutboxRow

        with mbank.uow() as u:
            body = u.session.execute(select(OutboxRow.body).where(OutboxRow.campaign_id == camp.id).limit(1)
                                     ).scalar_one()
        assert "pre-approved for up to CN¥" in body and "APR" in body

    def test_a_marketer_without_rights_cannot_run(self, mbank: Bank, base: PreapprovalInputs) -> None:
        from microlend.core.errors import PermissionDenied

        with pytest.raises(PermissionDenied):
            run_preapproval(mbank.uow(), mbank.who(Role.AUDITOR), base, as_of=AS_OF, started_at=AT)


class TestOfferApr:
    def test_without_a_fee_the_apr_is_the_rate(self) -> None:
        assert offer_apr(Decimal("0.0850"), 12) == Decimal("0.085000")

    def test_a_fee_raises_the_apr_by_the_irr(self) -> None:
        # 10,000 for 12 months at 12%: payment 888.4879; with a 1% fee 9,900 is received.
        # monthly IRR solving 9900 = 888.4879 * a(12, r) is 1.159428% -> APR 13.9131% (numpy-financial's rate)
        assert offer_apr(Decimal("0.12"), 12, Decimal("0.01")) == Decimal("0.139131")


def test_a_policy_the_batch_evaluator_cannot_compile_is_run_row_by_row(
        mbank: Bank, base: PreapprovalInputs, monkeypatch: pytest.MonkeyPatch) -> None:
    from microlend.decisioning import columnar

    columnar_run = run_preapproval(mbank.uow(), mbank.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=1500)

    class Refuses:
        def __init__(self, doc: object) -> None:
            raise columnar.NotCompilable("pretend")

    monkeypatch.setattr(columnar, "ColumnarPolicy", Refuses)
    other = make_bank(mbank.engine)
    row_run = run_preapproval(other.uow(), other.who(), base, as_of=AS_OF, started_at=AT, chunk_rows=1500)
    assert row_run.offers == columnar_run.offers > 0
    assert _offers(other, row_run.run_id) == _offers(mbank, columnar_run.run_id)
