"""The early-warning scan reads the book, last month's scores and the recorded answers as columns (and the
answers' facts kept when they arrived): on a generated book (lines and loans, some late, last month's scores,
tax, merchant, enforcement and credit-report answers with the pull before, consents) it finds the same facts,
scores and alerts as the row-by-row reading (ORM rows, Decimal amounts, every answer decrypted and parsed),
on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from tests.conftest import TenantKit

from microlend.core import crypto
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.data import answer_facts
from microlend.data import queries as data_queries
from microlend.data.tables import AnswerFactsRow, ProviderCallRow
from microlend.decisioning import behaviour
from microlend.decisioning import early_warning as rules
from microlend.decisioning.behaviour_scores import month_of, stored_scores
from microlend.decisioning.tables import BehaviourScoreRow, BehaviourScoreRunRow
from microlend.demo.sandbox.providers import payload
from microlend.origination import early_warning as ew
from microlend.origination.behaviour_scoring import (
    loan_ranges,
    loan_totals,
    portfolio_frames,
    portfolio_totals,
    scores_of,
    totals_of_parts,
)
from microlend.origination.tables import EarlyWarningAlertRow
from microlend.parties import queries as parties
from microlend.parties.tables import ConsentRow, CustomerRow
from microlend.servicing import queries as loans
from microlend.servicing.tables import CreditLineRow, InstallmentRow, LoanRow, ProductRow

SUBJECTS = 120


def _uscc(rng: random.Random) -> str:
    from microlend.demo import identities

    return identities.uscc(rng)


def generate_book(uow: UnitOfWork, tenant_id: int, on: date, seed: int = 5) -> None:
    """SUBJECTS customers, a third with an open credit line and a drawdown, the others a loan of 3-12 monthly
    instalments; some instalments paid late, some unpaid past due; last month's scores; half the customers
    with recorded answers of every kept source (the newest within 90 days, the credit report and enforcement
    with a pull before), and consents for most of them. Half the answers get their facts as the gateway keeps
    them when they arrive, the others are left for the scan to fill."""
    rng = random.Random(seed)
    now = datetime.combine(on, time(9), tzinfo=UTC)
    with uow:
        s = uow.session
        products = {p.code: p.id for p in s.execute(select(ProductRow).where(ProductRow.tenant_id == tenant_id))
                    .scalars()}
        for i in range(SUBJECTS):
            subject = _uscc(rng)
            customer = CustomerRow(tenant_id=tenant_id, kind="business", name=f"商户{i}", id_number_enc="-",
                                   id_number_index=crypto.blind_index(subject), id_number_masked="9111****",
                                   phone_enc="-", phone_index=f"{tenant_id}-{i}", phone_masked="138****",
                                   created_at=now, updated_at=now)
            s.add(customer)
            s.flush()
            is_line = i % 3 == 0
            limit = Decimal(rng.randrange(10_000, 300_000))
            line_id = None
            disbursed = on - timedelta(days=rng.randrange(20, 400))
            if is_line:
                line = CreditLineRow(tenant_id=tenant_id, product_id=products["RV-STD"], customer_id=customer.id,
                                     limit=limit, annual_rate=Decimal("0.12"),
                                     opened_on=disbursed - timedelta(days=rng.randrange(0, 300)),
                                     expires_on=on + timedelta(days=700), status="open", created_at=now)
                s.add(line)
                s.flush()
                line_id = line.id
            term = 1 if is_line else rng.choice((3, 6, 12))
            principal = (limit * Decimal(rng.choice(("0.3", "0.96", "1")))).quantize(Decimal("0.01")) if is_line \
                else limit
            late_days = rng.choice((0, 0, 0, 5, 20, 45))
            dpd = 0
            loan = LoanRow(tenant_id=tenant_id, product_id=products["RV-STD" if is_line else "EP-STD"],
                           customer_id=customer.id, credit_line_id=line_id,
                           method="bullet" if is_line else "equal-principal", currency="CNY", principal=principal,
                           annual_rate=Decimal("0.12"), rate_e8=12_000_000, penalty_rate_e8=18_000_000, grace_days=0,
                           term_months=6 if is_line else term, upfront_fee=Decimal(0), fee_mode="deduct",
                           allocation_order=["penalty", "fee", "current_principal"], disbursed_on=disbursed,
                           maturity_date=disbursed + timedelta(days=30 * term), status="active", days_past_due=0,
                           bucket="M0", loan_class="normal", penalty_accrued=Decimal(0), penalty_paid=Decimal(0),
                           credit_balance=Decimal(0), accrual_status="accruing", request_hash="", created_at=now)
            s.add(loan)
            s.flush()
            share = (principal / term).quantize(Decimal("0.0001"))
            for n in range(1, term + 1):
                due = disbursed + timedelta(days=(180 if is_line else 30 * n))
                unpaid = due < on and late_days == 45 and n == term
                paid_on = None if due >= on or unpaid else min(due + timedelta(days=rng.choice((0, 0, late_days))), on)
                if unpaid:
                    dpd = max(dpd, (on - due).days)
                amount = principal - share * (term - 1) if n == term else share
                s.add(InstallmentRow(
                    tenant_id=tenant_id, loan_id=loan.id, number=n, period_start=due - timedelta(days=30),
                    due_date=due, start_day=(due - timedelta(days=30)).toordinal(), due_day=due.toordinal(),
                    principal=amount, interest=Decimal(0), fee=Decimal(0),
                    principal_paid=amount if paid_on else Decimal(0), interest_paid=Decimal(0), fee_paid=Decimal(0),
                    interest_accrued=Decimal(0), status="paid" if paid_on else ("overdue" if unpaid else "pending"),
                    paid_on=paid_on))
            loan.days_past_due = dpd
            if is_line and i % 2 == 0:  # an earlier drawdown of the line: two instalments, one paid late
                _earlier_drawdown(s, loan, disbursed - timedelta(days=rng.randrange(60, 200)), rng.randrange(1, 15))
            if is_line and i % 4 == 0:  # and one repaid long before the scorecard's 400 days
                _earlier_drawdown(s, loan, on - timedelta(days=900), 0)
            previous = on.replace(day=1) - timedelta(days=1)
            if rng.random() < 0.8:
                facts = [{"name": f.name, "value": rng.choice((0, 0, 12, 40)) if f.name == "current_dpd" else 1,
                          "points": 0, "bin": 0} for f in behaviour.FACTORS]
                s.add(BehaviourScoreRow(tenant_id=tenant_id, subject_kind="line" if is_line else "loan",
                                        subject_id=line_id if is_line else loan.id, customer_id=customer.id,
                                        month=month_of(previous), as_of=previous, score=rng.randrange(540, 720),
                                        band="C", factors=facts, scorecard_version=behaviour.SCORECARD_VERSION,
                                        created_at=now))
            if i % 2:
                continue
            for scope in ("external_data", "credit_report"):
                if rng.random() < 0.8:
                    s.add(ConsentRow(tenant_id=tenant_id, customer_id=customer.id, scope=scope, granted_at=now,
                                     granted_by="borrower", channel="self"))
            pulls = [("tax", 10), ("merchant", 12), ("bureau", 8), ("bureau", 50), ("enforcement", 9),
                     ("enforcement", 45), ("registry", 10)]
            if rng.random() < 0.2:
                pulls = [("tax", 120), ("bureau", 95), ("bureau", 200)]  # too old to count
            for kind, ago in pulls:
                answer = payload(kind, subject, on - timedelta(days=ago), seed=rng.randrange(3), anchor=on)
                if kind == "enforcement" and rng.random() < 0.5:
                    answer = {**answer, "found": True, "cases": [
                        {"case_no": f"(2026)京01执{rng.randrange(3)}号", "filed_on": str(on - timedelta(days=60)),
                         "amount": "1000.00", "status": rng.choice(("open", "closed")),
                         "dishonest": rng.random() < 0.3} for _ in range(rng.randrange(0, 3))]}
                if kind == "bureau":
                    answer = {**answer, "overdue_accounts_now": rng.choice((0, 0, 1, 2)),
                              "max_overdue_level_24m": rng.choice((0, 1, 2))}
                text = json.dumps(answer, ensure_ascii=False)
                call = ProviderCallRow(
                    tenant_id=tenant_id, kind=kind, subject_index=crypto.blind_index(subject),
                    subject_masked="9111****", subject_kind="business", as_of=None, purpose="monitoring",
                    application_id=None, called_by="worker",
                    at=datetime.combine(on - timedelta(days=ago), time(9, rng.randrange(60)), tzinfo=UTC),
                    status=rng.choice(("ok", "ok", "ok", "not_found")), latency_ms=5, cost=Decimal(0),
                    currency="CNY", cached=False, http_status=200, error=None, payload=crypto.encrypt(text),
                    payload_sha256=hashlib.sha256(text.encode()).hexdigest())
                s.add(call)
                s.flush()
                kept = answer_facts.row_of(call, text) if rng.random() < 0.5 else None
                if kept is not None:
                    s.add(kept)
        uow.commit()


def _earlier_drawdown(s: Any, drawdown: LoanRow, disbursed: date, late: int) -> None:
    """Another drawdown of `drawdown`'s line, disbursed on `disbursed`, of two monthly instalments (of amounts
    in part cents) both paid, the first `late` days after its due date."""
    loan = LoanRow(**{c.key: getattr(drawdown, c.key) for c in LoanRow.__table__.columns if c.key != "id"})
    loan.disbursed_on, loan.principal, loan.days_past_due = disbursed, Decimal("3000.0051"), 0
    s.add(loan)
    s.flush()
    for n, amount in ((1, Decimal("1500.0050")), (2, Decimal("1500.0001"))):
        due = disbursed + timedelta(days=30 * n)
        paid_on = due + timedelta(days=late if n == 1 else 0)
        s.add(InstallmentRow(
            tenant_id=loan.tenant_id, loan_id=loan.id, number=n, period_start=due - timedelta(days=30),
            due_date=due, start_day=(due - timedelta(days=30)).toordinal(), due_day=due.toordinal(),
            principal=amount, interest=Decimal(0), fee=Decimal(0), principal_paid=amount, interest_paid=Decimal(0),
            fee_paid=Decimal(0), interest_accrued=Decimal(0), status="paid", paid_on=paid_on))


# --- the row-by-row reading the scan did before (ORM rows, Decimal amounts, every answer parsed) -------------


def reference_book(uow: UnitOfWork, who: Principal, on: date) -> pl.DataFrame:
    cents = Decimal(100)
    subjects = pl.DataFrame(
        [(i, kind, c, int((limit * cents).to_integral_value()), opened, dpd)
         for i, kind, c, limit, opened, dpd in loans.behaviour_subjects(uow, who)],
        schema=behaviour.SUBJECT_SCHEMA, orient="row")
    instalments = pl.DataFrame(
        [(kind, i, d, due, paid, int((p * cents).to_integral_value()))
         for kind, i, d, due, paid, p in loans.behaviour_instalments(uow, who, on)],
        schema={"kind": pl.Utf8, **behaviour.INSTALMENT_SCHEMA}, orient="row")
    with uow:
        s = uow.session
        month = s.execute(select(BehaviourScoreRow.month).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month < month_of(on))
            .order_by(BehaviourScoreRow.month.desc()).limit(1)).scalar_one_or_none()
        rows = [] if month is None else stored_scores(uow, who, list(s.execute(select(BehaviourScoreRow).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month == month)).scalars()))
        before = pl.DataFrame(
            [(r.subject_kind, r.subject_id, r.score,
              next((f.value for f in r.factors if f.name == "current_dpd"), None)) for r in rows],
            schema={"subject_kind": pl.Utf8, "subject_id": pl.Int64, "score_before": pl.Int32,
                    "dpd_before": pl.Int32}, orient="row")
    return ew.book_signals(subjects, instalments, on, before=before, external=reference_external(uow, who, on))


def reference_external(uow: UnitOfWork, who: Principal, on: date) -> pl.DataFrame:
    indexes = parties.subject_indexes(uow, who)
    stored = data_queries.stored_business_features(uow, who, indexes, on)
    if stored.height == 0:
        return stored
    pairs = data_queries.answer_pairs(uow, who, indexes, ("enforcement", "bureau"), on)
    enf = {c: ew.new_enforcement(*pair) for (c, kind), pair in pairs.items() if kind == "enforcement"}
    bur = {c: ew.overdue_worsened(*pair) for (c, kind), pair in pairs.items() if kind == "bureau"}
    customers = stored.get_column("customer_id").to_list()
    external = parties.customers_with_consent(uow, who, "external_data")
    report = parties.customers_with_consent(uow, who, "credit_report")
    ext, rep = pl.col("customer_id").is_in(list(external)), pl.col("customer_id").is_in(list(report))

    def col(name: str, dtype: Any) -> pl.Expr:
        return pl.col(name).cast(dtype) if name in stored.columns else pl.lit(None, dtype=dtype)

    return stored.with_columns(
        pl.Series("enf_new_open", [enf[c][0] if c in enf else None for c in customers], dtype=pl.Int32),
        pl.Series("enf_new_dishonest", [enf[c][1] if c in enf else None for c in customers], dtype=pl.Boolean),
        pl.Series("bur_overdue_worse", [bur.get(c) for c in customers], dtype=pl.Int32),
    ).select(
        "customer_id",
        pl.when(ext).then(col("tax_sales_growth_yoy", pl.Float64)).alias("tax.sales_growth"),
        pl.when(ext).then(col("mer_flow_trend", pl.Float64)).alias("merchant.flow_trend"),
        pl.col("enf_new_open").alias("enforcement.cases_open"),
        pl.col("enf_new_dishonest").alias("enforcement.dishonest"),
        pl.when(rep).then(pl.col("bur_overdue_worse")).alias("bureau.overdue_now"),
    )


@pytest.fixture
def kit(new_tenant: Callable[[], TenantKit]) -> TenantKit:
    return new_tenant()


def test_the_column_reads_find_the_same_facts_scores_and_alerts_as_the_row_by_row_reads(kit: TenantKit) -> None:
    approver = kit.principal(Role.APPROVER.value)
    with kit.uow_factory() as u:
        on = business_date(u.session, kit.tenant.id)
    generate_book(kit.uow_factory(), kit.tenant.id, on)
    key = ["subject_kind", "subject_id"]
    columns = [*key, "customer_id", *rules.BOOK_SCHEMA, "score", "band",
               *(f"bin_{f.name}" for f in behaviour.FACTORS), *(f"points_{f.name}" for f in behaviour.FACTORS)]
    expected = reference_book(kit.uow_factory(), approver, on)
    fast = ew.current_book(kit.uow_factory(), approver, on)
    assert fast.height == expected.height == SUBJECTS
    # the instalments read one row per loan and unpacked are the ORM's rows, principals rounded to cents as
    # Decimal rounds them (the book's principals have tenths and hundredths of a cent)
    _, instalments = portfolio_frames(kit.uow_factory(), approver, on)
    rows = loans.behaviour_instalments(kit.uow_factory(), approver, on)
    assert any(p % Decimal("0.01") for *_, p in rows)
    orm = [(kind, i, d, due, paid, int((p * 100).to_integral_value())) for kind, i, d, due, paid, p in rows]
    assert sorted(instalments.rows(), key=str) == sorted(orm, key=str)
    # the database's totals per subject are the scorecard's own totals of the instalments read one by one
    _, totals = portfolio_totals(kit.uow_factory(), approver, on)
    for kind in ("line", "loan"):
        mine = instalments.filter(pl.col("kind") == kind).drop("kind")
        want_totals = behaviour.instalment_totals(mine, on).sort("subject_id")
        got_totals = totals.filter(pl.col("kind") == kind).drop("kind").sort("subject_id")
        assert got_totals.equals(want_totals), (kind, got_totals.to_dicts(), want_totals.to_dicts())
    assert totals.get_column("max_late").max() > 0 and totals.filter(pl.col("kind") == "line").height == SUBJECTS // 3  # type: ignore[operator]
    # read per loan in ranges of ids, each apart (a line's drawdowns may fall in two), added up: the same totals
    for parts in (2, 7):
        ranges = loan_ranges(kit.uow_factory(), approver, parts)
        assert 1 < len(ranges) <= parts
        read = [loan_totals(kit.uow_factory(), approver, on, ids) for ids in ranges]
        assert totals_of_parts(read, on).sort("kind", "subject_id").equals(totals.sort("kind", "subject_id"))
    want = expected.select(list(dict.fromkeys(columns))).sort(key)
    got = fast.select(list(dict.fromkeys(columns))).sort(key)
    assert got.equals(want), (got.to_dicts(), want.to_dicts())
    # the generated book exercises every external fact, both ways
    for fact in ("tax.sales_growth", "merchant.flow_trend", "enforcement.cases_open", "bureau.overdue_now"):
        assert want.get_column(fact).drop_nulls().len() > 0, fact
    assert want.get_column("dpd.before").drop_nulls().len() > 0 and want.get_column("dpd.now").max() > 0  # type: ignore[operator]
    # every kept answer now has its facts (half were filled by the scan's read)
    with kit.uow_factory() as u:
        calls = u.session.execute(select(ProviderCallRow.id).where(
            ProviderCallRow.tenant_id == kit.tenant.id, ProviderCallRow.kind.in_(answer_facts.KINDS))).scalars()
        kept = u.session.execute(select(AnswerFactsRow.call_id).where(AnswerFactsRow.tenant_id == kit.tenant.id))
        assert set(calls) == set(kept.scalars())

    doc = ew.rules_in_force(kit.uow_factory(), approver)
    raised = rules.raised(rules.assess_book(doc, expected.select(list(rules.BOOK_SCHEMA))))
    run = ew.scan(kit.uow_factory(), approver)
    assert run.raised == raised.height > 0 and run.new == raised.height
    with kit.uow_factory() as u:
        found = {(a.subject_kind, a.subject_id, a.signal, a.severity) for a in u.session.execute(
            select(EarlyWarningAlertRow).where(EarlyWarningAlertRow.tenant_id == kit.tenant.id)).scalars()}
        stored = {(r.subject_kind, r.subject_id): (r.score, r.band, [f.as_dict() for f in r.factors])
                  for r in stored_scores(u, approver, list(u.session.execute(
                      select(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == kit.tenant.id,
                                                      BehaviourScoreRow.month == month_of(on))).scalars()))}
    assert found == {(k, i, g, sev) for k, i, _, g, sev in raised.iter_rows()}
    # each alert keeps the facts its rule read, as the scan kept them one alert at a time
    with kit.uow_factory() as u:
        inputs = {(a.subject_kind, a.subject_id, a.signal): a.inputs for a in u.session.execute(
            select(EarlyWarningAlertRow).where(EarlyWarningAlertRow.tenant_id == kit.tenant.id)).scalars()}
    by_subject = {(r["subject_kind"], r["subject_id"]): r for r in expected.iter_rows(named=True)}
    assert inputs == {(k, i, g): ew.alert_inputs(by_subject[(k, i)], g) for k, i, _, g, _ in raised.iter_rows()}
    reference_scores = {(r["subject_kind"], r["subject_id"]): (r["score"], r["band"],
                                                              [f.as_dict() for f in behaviour.factors_of(r)])
                        for r in expected.iter_rows(named=True)}
    assert stored == reference_scores
    # and the month's scores are the scorecard's own on the same frames
    assert sorted(v[0] for v in stored.values()) == sorted(
        scores_of(*portfolio_frames(kit.uow_factory(), approver, on), on).get_column("score").to_list())


def test_a_large_book_on_sqlite_is_read_in_processes_of_their_own_with_the_same_facts(
        kit: TenantKit, new_tenant: Callable[[], TenantKit], backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From `READ_APART_FROM` loans of the bank the book's reads run in processes of their own on SQLite (through
    ADBC, each on a connection of its own): the same facts, scores and external answers as read in threads. Another
    bank's loans make no bank's book large: the ranges are of the bank's own loans."""
    approver = kit.principal(Role.APPROVER.value)
    with kit.uow_factory() as u:
        on = business_date(u.session, kit.tenant.id)
    generate_book(kit.uow_factory(), kit.tenant.id, on, seed=11)
    in_threads = ew.current_book(kit.uow_factory(), approver, on)
    monkeypatch.setattr(ew, "READ_APART_FROM", 1)
    assert ew._reads_apart(kit.uow_factory(), loan_ranges(kit.uow_factory(), approver, 1)) == (backend == "sqlite")
    apart = ew.current_book(kit.uow_factory(), approver, on)
    other = new_tenant()
    assert loan_ranges(other.uow_factory(), other.principal(Role.APPROVER.value), 1) == []
    with kit.uow_factory() as u:
        ids = u.session.execute(select(LoanRow.id).where(LoanRow.tenant_id == kit.tenant.id)).scalars().all()
    assert loan_ranges(kit.uow_factory(), approver, 1) == [(min(ids), max(ids))]
    key = ["subject_kind", "subject_id"]
    assert apart.height == SUBJECTS and apart.sort(key).equals(in_threads.sort(key))
    for fact in ("tax.sales_growth", "enforcement.cases_open", "bureau.overdue_now", "dpd.before"):
        assert apart.get_column(fact).drop_nulls().len() > 0, fact


def test_new_alerts_written_in_bulk_read_back_as_the_orm_keeps_them_and_a_second_open_one_is_refused(
        kit: TenantKit) -> None:
    with kit.uow_factory() as u:
        on = business_date(u.session, kit.tenant.id)
    now = datetime.now(UTC)
    alert = {"tenant_id": kit.tenant.id, "subject_kind": "loan", "subject_id": 7, "customer_id": None,
             "signal": "dpd_transition", "severity": "high", "rule_version": "v1", "inputs": {"dpd.now": 35,
             "score.drop": None, "tax.sales_growth": "-0.6000"}, "status": "open",
             "open_key": "loan:7:dpd_transition", "raised_on": on, "last_seen_on": on, "created_at": now,
             "updated_at": now}
    with kit.uow_factory() as u:
        ew._insert_alerts(u.session, [alert])
        u.commit()
    with kit.uow_factory() as u:
        row = u.session.execute(select(EarlyWarningAlertRow).where(
            EarlyWarningAlertRow.tenant_id == kit.tenant.id)).scalar_one()
        assert {k: getattr(row, k) for k in alert} == alert
        with pytest.raises(IntegrityError):
            ew._insert_alerts(u.session, [alert])


def _change_the_book(uow: UnitOfWork, tenant_id: int, on: date) -> None:
    """Within the month: an unpaid instalment repaid, a paid one reversed, a loan restructured (its unpaid
    instalments moved a month later) and a loan closed."""
    with uow:
        s = uow.session
        loans_ = list(s.execute(select(LoanRow).where(LoanRow.tenant_id == tenant_id, LoanRow.credit_line_id.is_(None),
                                                      LoanRow.status == "active").order_by(LoanRow.id)).scalars())
        unpaid = s.execute(select(InstallmentRow).where(InstallmentRow.tenant_id == tenant_id,
                                                        InstallmentRow.status == "overdue")
                           .order_by(InstallmentRow.id)).scalars().first()
        assert unpaid is not None
        unpaid.status, unpaid.paid_on, unpaid.principal_paid = "paid", on, unpaid.principal
        paid = s.execute(select(InstallmentRow).where(InstallmentRow.tenant_id == tenant_id,
                                                      InstallmentRow.status == "paid",
                                                      InstallmentRow.loan_id == loans_[1].id)
                         .order_by(InstallmentRow.id)).scalars().first()
        assert paid is not None
        paid.status, paid.paid_on, paid.principal_paid = "overdue", None, Decimal(0)
        for row in s.execute(select(InstallmentRow).where(InstallmentRow.loan_id == loans_[2].id,
                                                          InstallmentRow.paid_on.is_(None))).scalars():
            row.due_date += timedelta(days=30)
            row.due_day = row.due_date.toordinal()
        loans_[3].status = "closed"
        uow.commit()


def test_a_rescan_in_the_month_writes_only_the_changed_scores_and_finds_what_the_reference_finds(
        kit: TenantKit) -> None:
    approver = kit.principal(Role.APPROVER.value)
    with kit.uow_factory() as u:
        on = business_date(u.session, kit.tenant.id)
    generate_book(kit.uow_factory(), kit.tenant.id, on)
    first = ew.scan(kit.uow_factory(), approver)
    assert first.scores_kept and first.subjects == SUBJECTS
    _change_the_book(kit.uow_factory(), kit.tenant.id, on)
    expected = reference_book(kit.uow_factory(), approver, on)
    doc = ew.rules_in_force(kit.uow_factory(), approver)
    raised = rules.raised(rules.assess_book(doc, expected.select(list(rules.BOOK_SCHEMA))))
    again = ew.scan(kit.uow_factory(), approver)
    assert again.subjects == expected.height == SUBJECTS - 1 and again.raised == raised.height
    with kit.uow_factory() as u:
        runs = list(u.session.execute(select(BehaviourScoreRunRow).where(
            BehaviourScoreRunRow.tenant_id == kit.tenant.id, BehaviourScoreRunRow.month == month_of(on))).scalars())
        stored = {(r.subject_kind, r.subject_id): (r.score, r.band, [f.as_dict() for f in r.factors], r.as_of)
                  for r in stored_scores(u, approver, list(u.session.execute(
                      select(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == kit.tenant.id,
                                                      BehaviourScoreRow.month == month_of(on))).scalars()))}
        record = u.session.execute(select(AuditRow).where(
            AuditRow.tenant_id == kit.tenant.id, AuditRow.action == "behaviour_score.run")
            .order_by(AuditRow.id.desc())).scalars().first()
    # the month's scores are the reference's on the changed book, under the month's one run, dated anew
    assert [r.as_of for r in runs] == [on] and stored == {
        (r["subject_kind"], r["subject_id"]): (r["score"], r["band"], [f.as_dict() for f in behaviour.factors_of(r)],
                                               on) for r in expected.iter_rows(named=True)}
    # the closed loan's row is gone; only the rows that changed were written
    assert record is not None and record.after is not None
    assert record.after["removed"] == 1 and 0 < record.after["written"] < SUBJECTS // 4
    # the alerts are those the rules raise on the changed book (open ones kept, seen again or escalated)
    with kit.uow_factory() as u:
        open_now = {(a.subject_kind, a.subject_id, a.signal) for a in u.session.execute(
            select(EarlyWarningAlertRow).where(EarlyWarningAlertRow.tenant_id == kit.tenant.id,
                                               EarlyWarningAlertRow.last_seen_on == on)).scalars()}
    assert {(k, i, g) for k, i, _, g, _ in raised.iter_rows()} <= open_now
