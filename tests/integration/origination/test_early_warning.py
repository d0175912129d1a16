"""Early warning (贷后预警) on SQLite and PostgreSQL: the scan over the active book raises alerts by the bank's
published rules, one open alert per subject and signal; each action has its effect (freeze and reduce through
the limit desk with four eyes above authority, a visit for the officer, a collections case opened early,
dismissal); tenants and roles are kept apart; the rules are versioned and simulated before publishing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.conftest import Api, TenantKit
from tests.integration.decisioning.test_decisioning_api import audit_actions, open_line
from tests.integration.origination.test_limit_desk import amount_limit, assign, late_long_ago

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.decisioning import early_warning as rules
from microlend.decisioning import service as policies
from microlend.decisioning.limit_changes import update_limit_authority
from microlend.decisioning.tables import LimitChangeRow
from microlend.origination import early_warning as ew
from microlend.origination.tables import EarlyWarningAlertRow, VisitTaskRow
from microlend.servicing.collection_tables import CollectionCaseRow
from microlend.servicing.tables import CreditLineRow, LoanRow


@pytest.fixture
def api(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


@pytest.fixture
def other(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def alerts(api: Api, **where: Any) -> list[EarlyWarningAlertRow]:
    with api.kit.uow_factory() as u:
        q = select(EarlyWarningAlertRow).where(EarlyWarningAlertRow.tenant_id == api.kit.tenant.id)
        for k, v in where.items():
            q = q.where(getattr(EarlyWarningAlertRow, k) == v)
        return list(u.session.execute(q.order_by(EarlyWarningAlertRow.id)).scalars())


def score_alert(api: Api) -> tuple[int, int]:
    """A line with a poor 12-month history (band E): the scan raises a high behaviour-score alert on it."""
    line_id = late_long_ago(api)
    ew.scan(api.kit.uow_factory(), api.kit.principal("approver"))
    [alert] = alerts(api, subject_id=line_id, signal="behaviour_score")
    return line_id, alert.id


def analysts(api: Api) -> tuple[Principal, Principal]:
    return tuple(Principal(user_id=900 + i, tenant_id=api.kit.tenant.id, username=f"analyst-{i}",  # type: ignore[return-value]
                           roles=frozenset({Role.RISK_ANALYST})) for i in (1, 2))


class TestScan:
    def test_the_scan_raises_alerts_by_the_rules_and_never_twice_while_open(self, api: Api) -> None:
        poor, clean = late_long_ago(api), open_line(api, "30000", {})
        runner = api.kit.principal("approver")
        first = ew.scan(api.kit.uow_factory(), runner)
        assert first.subjects == 2 and first.scores_kept
        raised = alerts(api, status="open")
        assert {(a.subject_id, a.signal, a.severity) for a in raised} == {(poor, "behaviour_score", "high")}
        [alert] = raised
        assert alert.rule_version == first.rule_version and alert.inputs["score.value"] < 560
        assert alert.subject_kind == "line" and clean not in {a.subject_id for a in raised}
        again = ew.scan(api.kit.uow_factory(), runner)
        assert again.raised == first.raised and again.new == 0
        assert len(alerts(api)) == 1

    def test_an_open_alert_seen_worse_is_raised_in_severity_not_duplicated(self, api: Api) -> None:
        _, alert_id = score_alert(api)
        with api.kit.uow_factory() as u:  # as if the last scan had found it low
            u.session.execute(update(EarlyWarningAlertRow).where(EarlyWarningAlertRow.id == alert_id)
                              .values(severity="low"))
            u.commit()
        run = ew.scan(api.kit.uow_factory(), api.kit.principal("approver"))
        assert (run.new, run.escalated) == (0, 1)
        assert [(a.id, a.severity) for a in alerts(api)] == [(alert_id, "high")]

    def test_an_acted_alert_keeps_its_signal_quiet(self, api: Api) -> None:
        _, alert_id = score_alert(api)
        ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "dismiss", "known: restructured")
        ew.scan(api.kit.uow_factory(), api.kit.principal("approver"))
        assert [a.status for a in alerts(api)] == ["dismissed"]

    def test_a_transition_into_arrears_since_the_last_scoring_is_high(self, api: Api) -> None:
        line_id = open_line(api, "30000", {}, drawn="3000")
        runner = api.kit.principal("approver")
        ew.scan(api.kit.uow_factory(), runner)  # keeps this month's score: 0 days past due
        with api.kit.uow_factory() as u:  # the score of last month, and the drawdown 35 days late now
            from microlend.core.tenancy import business_date
            from microlend.decisioning.tables import BehaviourScoreRow

            on = business_date(u.session, api.kit.tenant.id)
            previous = (on.replace(day=1) - timedelta(days=1))
            u.session.execute(update(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == api.kit.tenant.id)
                              .values(month=f"{previous:%Y-%m}"))
            u.session.execute(update(LoanRow).where(LoanRow.credit_line_id == line_id).values(days_past_due=35))
            u.commit()
        ew.scan(api.kit.uow_factory(), runner)
        [alert] = alerts(api, signal="dpd_transition")
        assert (alert.severity, alert.inputs) == ("high", {"dpd.now": 35, "dpd.before": 0})

    def test_another_bank_sees_and_touches_none_of_the_alerts(self, api: Api, other: Api) -> None:
        _, alert_id = score_alert(api)
        stranger = other.kit.principal("approver")
        assert ew.list_alerts(other.kit.uow_factory(), stranger) == []
        with pytest.raises(NotFound):
            ew.act(other.kit.uow_factory(), stranger, alert_id, "dismiss", "not mine")
        with pytest.raises(NotFound):
            ew.get_alert(other.kit.uow_factory(), stranger, alert_id)
        assert [a.status for a in alerts(api)] == ["open"]

    def test_who_may_scan_see_and_act(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        for role in ("collector", "marketer", "operations"):
            with pytest.raises(PermissionDenied):
                ew.list_alerts(api.kit.uow_factory(), api.kit.principal(role))
        officer = api.kit.principal("credit_officer")
        with pytest.raises(PermissionDenied):
            ew.scan(api.kit.uow_factory(), officer)
        assign(api, line_id, None)
        with api.kit.uow_factory() as u:  # another officer's customer: not in this officer's queue
            customer = u.session.get(CreditLineRow, line_id).customer_id  # type: ignore[union-attr]
        assign(api, line_id, Principal(user_id=officer.user_id + 1000, tenant_id=api.kit.tenant.id, username="x"))
        assert ew.list_alerts(api.kit.uow_factory(), officer) == []
        assign(api, line_id, officer)
        assert [a.id for a in ew.list_alerts(api.kit.uow_factory(), officer)] == [alert_id]
        assert customer is not None
        with pytest.raises(PermissionDenied):
            ew.act(api.kit.uow_factory(), officer, alert_id, "dismiss", "officer may not")


class TestActions:
    def test_an_approver_freezes_the_line_at_what_is_drawn(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        action = ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "freeze", "band E")
        assert action.result["status"] == "applied"
        assert amount_limit(api, line_id) == Decimal("12000.00")  # four drawdowns of 3,000
        [alert] = alerts(api)
        assert alert.status == "acted" and alert.open_key is None
        assert audit_actions(api, "credit_line.change_limit") == 1 and audit_actions(api, "early_warning.freeze") == 1
        with pytest.raises(Conflict):
            ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "dismiss", "again")

    def test_a_reduction_above_the_approvers_authority_waits_for_a_second_person(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        update_limit_authority(api.kit.uow_factory(), api.kit.principal("admin"),
                               {"approver": Decimal("10000"), "admin": Decimal("1000000")}, Decimal("0"))
        approver = api.kit.principal("approver")
        action = ew.act(api.kit.uow_factory(), approver, alert_id, "reduce_limit", "halve it",
                        new_limit=Decimal("20000"))  # 20,000 less: above 10,000
        assert action.result["status"] == "pending" and amount_limit(api, line_id) == Decimal("40000.00")
        with api.kit.uow_factory() as u:
            change = u.session.get(LimitChangeRow, action.result["limit_change_id"])
            assert change is not None and (change.status, change.created_by) == ("pending", approver.username)

    def test_a_reduction_within_authority_applies_and_a_bad_limit_is_refused(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        approver = api.kit.principal("approver")
        for bad in (Decimal("40000"), Decimal("-1"), Decimal("1.001")):
            with pytest.raises(ValidationError):
                ew.act(api.kit.uow_factory(), approver, alert_id, "reduce_limit", "cut", new_limit=bad)
        ew.act(api.kit.uow_factory(), approver, alert_id, "reduce_limit", "cut", new_limit=Decimal("30000"))
        assert amount_limit(api, line_id) == Decimal("30000.00")

    def test_the_risk_team_proposes_a_freeze_it_cannot_apply(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        analyst, _ = analysts(api)
        action = ew.act(api.kit.uow_factory(), analyst, alert_id, "freeze", "band E")
        assert action.result["status"] == "pending" and amount_limit(api, line_id) == Decimal("40000.00")

    def test_a_visit_lands_with_the_customers_officer(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        officer = api.kit.principal("credit_officer")
        assign(api, line_id, officer)
        ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "visit", "see the shop")
        [visit] = ew.list_visits(api.kit.uow_factory(), officer)
        assert visit.source == "early_warning" and visit.source_id == alert_id
        assert ew.list_visits(api.kit.uow_factory(), api.kit.principal("credit_officer")) == []  # not theirs
        done = ew.record_visit_outcome(api.kit.uow_factory(), officer, visit.id, "shop open, stock low")
        assert done.status == "done" and done.done_by == officer.username
        with pytest.raises(Conflict):
            ew.record_visit_outcome(api.kit.uow_factory(), officer, visit.id, "again")

    def test_a_collections_case_opens_early_on_the_lines_drawdowns(self, api: Api) -> None:
        line_id, alert_id = score_alert(api)
        action = ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "collections_case", "early")
        with api.kit.uow_factory() as u:
            cases = list(u.session.execute(select(CollectionCaseRow).join(
                LoanRow, LoanRow.id == CollectionCaseRow.loan_id).where(LoanRow.credit_line_id == line_id)).scalars())
        assert sorted(c.id for c in cases) == sorted(action.result["case_ids"]) and cases
        assert {c.queue for c in cases} == {"early"} and audit_actions(api, "collections.open_early") == len(cases)

    def test_a_loan_alert_cannot_be_frozen(self, api: Api) -> None:
        _, alert_id = score_alert(api)
        with api.kit.uow_factory() as u:
            u.session.execute(update(EarlyWarningAlertRow).where(EarlyWarningAlertRow.id == alert_id)
                              .values(subject_kind="loan"))
            u.commit()
        with pytest.raises(ValidationError):
            ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "freeze", "no line")
        assert alerts(api)[0].status == "open"


class TestRules:
    def test_a_stricter_version_is_simulated_on_the_book_and_published_by_a_second_person(self, api: Api) -> None:
        late_long_ago(api)
        open_line(api, "30000", {})
        doc = rules.default_early_warning()
        doc["metadata"]["name"] = "stricter_behaviour"
        table = next(n for n in doc["nodes"] if n["id"] == "behaviour_score")
        table["content"]["rules"][0]["beh_0"] = "< 640"  # band E moves up to 640: the clean line (630) too
        doc["tests"] = [t for t in doc["tests"] if "band E" not in t["name"]]
        maker, checker = analysts(api)
        version, submission = policies.submit_with_evidence(api.kit.uow_factory(), maker, doc)
        simulation = submission.simulation
        assert simulation["source"] == "current_book" and simulation["rows"] == 2
        assert simulation["candidate"]["alerts"]["behaviour_score"]["high"] == 2
        assert simulation["champion"]["alerts"]["behaviour_score"]["high"] == 1
        with pytest.raises(PermissionDenied):
            policies.publish(api.kit.uow_factory(), maker, version.content_hash)
        policies.publish(api.kit.uow_factory(), checker, version.content_hash)
        run = ew.scan(api.kit.uow_factory(), api.kit.principal("approver"))
        assert run.rule_version == version.content_hash
        assert {a.rule_version for a in alerts(api)} == {version.content_hash} and len(alerts(api)) == 2


def test_visits_of_another_bank_are_not_found(api: Api, other: Api) -> None:
    line_id, alert_id = score_alert(api)
    ew.act(api.kit.uow_factory(), api.kit.principal("approver"), alert_id, "visit", "go")
    with api.kit.uow_factory() as u:
        visit_id = u.session.execute(select(VisitTaskRow.id)).scalars().first()
    assert visit_id is not None
    with pytest.raises(NotFound):
        ew.record_visit_outcome(other.kit.uow_factory(), other.kit.principal("approver"), visit_id, "x")
    assert line_id and date.today()


class TestPages:
    def test_the_queue_in_both_languages_and_an_action_by_htmx(self, api: Api) -> None:
        from tests.integration.origination.test_workbench_pages import get, post

        line_id, alert_id = score_alert(api)
        officer, approver = api.kit.principal("credit_officer"), api.kit.principal("approver")
        assign(api, line_id, officer)
        zh = get(api, "/early-warning", officer, lang="zh_CN")
        assert zh.status_code == 200, zh.text
        assert "贷后预警" in zh.text and zh.text.count('data-testid="alert"') == 1
        assert 'data-testid="act-form"' not in zh.text  # an officer sees, an approver acts
        en = get(api, "/early-warning?severity=high", approver)
        assert "Behaviour score" in en.text and 'data-testid="act-freeze"' in en.text
        assert en.text.count('href="/early-warning"') == 1  # in the menu once, for every role that may see it
        assert 'data-testid="alert"' not in get(api, "/early-warning?severity=low", approver).text
        refused = post(api, f"/early-warning/alerts/{alert_id}/act", approver, {"action": "visit"}, htmx=True)
        assert refused.status_code == 422 and "note" in refused.text and alerts(api)[0].status == "open"
        done = post(api, f"/early-warning/alerts/{alert_id}/act", approver,
                     {"action": "visit", "note": "see the shop"}, htmx=True)
        assert done.status_code == 200 and f'id="alert-{alert_id}"' in done.text and "<html" not in done.text
        visits = get(api, "/early-warning/visits", officer, lang="zh_CN")
        assert "我的走访" in visits.text and "see the shop" in visits.text
        [visit] = ew.list_visits(api.kit.uow_factory(), officer)
        sent = post(api, f"/early-warning/visits/{visit.id}/outcome", officer, {"outcome": "stock low"})
        assert sent.status_code == 303 and ew.list_visits(api.kit.uow_factory(), officer) == []

    def test_pages_refuse_roles_without_the_permission(self, api: Api) -> None:
        from tests.integration.origination.test_workbench_pages import get, post

        _, alert_id = score_alert(api)
        assert get(api, "/early-warning", api.kit.principal("marketer")).status_code == 403
        assert get(api, "/early-warning", None).status_code == 303
        officer = api.kit.principal("credit_officer")
        assert post(api, f"/early-warning/alerts/{alert_id}/act", officer,
                    {"action": "dismiss", "note": "x"}).status_code in (403, 404)
        assert alerts(api)[0].status == "open"


def record_tax_answer(api: Api, customer_id: int, on: date) -> None:
    """The tax source's recorded answer about a customer: declared sales fell from 100,000 to 40,000 a month."""
    import hashlib
    import json
    from datetime import UTC, datetime

    from microlend.core.crypto import encrypt
    from microlend.data.tables import ProviderCallRow
    from microlend.parties.tables import CustomerRow

    first = on.replace(day=1)
    months = []
    for back in range(1, 25):
        m = first
        for _ in range(back):
            m = (m - timedelta(days=1)).replace(day=1)
        months.append({"period": f"{m:%Y-%m}", "sales": "40000.00" if back <= 12 else "100000.00"})
    answer = json.dumps({"found": True, "credit_grade": "B", "declarations": months})
    with api.kit.uow_factory() as u:
        index = u.session.get(CustomerRow, customer_id).id_number_index  # type: ignore[union-attr]
        u.session.add(ProviderCallRow(
            tenant_id=api.kit.tenant.id, kind="tax", subject_index=index, subject_masked="***", subject_kind="person",
            as_of=None, purpose="monitoring", application_id=None, called_by="system",
            at=datetime.combine(on, datetime.min.time(), tzinfo=UTC), status="ok", latency_ms=5, cost=Decimal(0),
            currency="CNY", cached=False, http_status=200, error=None, payload=encrypt(answer),
            payload_sha256=hashlib.sha256(answer.encode()).hexdigest()))
        u.commit()


def test_tax_data_warns_only_under_the_external_data_consent(api: Api) -> None:
    from datetime import UTC, datetime

    from microlend.core.tenancy import business_date
    from microlend.parties.tables import ConsentRow

    with_consent, without = open_line(api, "30000", {}), open_line(api, "31000", {})
    with api.kit.uow_factory() as u:
        on = business_date(u.session, api.kit.tenant.id)
        customers = {line: u.session.get(CreditLineRow, line).customer_id  # type: ignore[union-attr]
                     for line in (with_consent, without)}
        u.session.add(ConsentRow(tenant_id=api.kit.tenant.id, customer_id=customers[with_consent],
                                 scope="external_data", granted_at=datetime.now(UTC), granted_by="borrower",
                                 channel="self"))
        u.commit()
    for line in (with_consent, without):
        record_tax_answer(api, int(customers[line]), on)  # type: ignore[arg-type]
    ew.scan(api.kit.uow_factory(), api.kit.principal("approver"))
    [alert] = alerts(api, signal="tax_sales_drop")
    assert (alert.subject_id, alert.severity) == (with_consent, "high")
    assert Decimal(alert.inputs["tax.sales_growth"]) == Decimal("-0.6")
