"""Collections (催收) end to end on SQLite and PostgreSQL: a case opens when close of business finds a loan
overdue, is routed by its bucket, is worked under the conduct rules (a forbidden contact is recorded and
refused with the rule's name; time comes from the clock), promises are found kept or broken at close of
business, and the case closes on cure. Then the same through the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from tests.conftest import Api, TenantKit, sign_in_page
from tests.integration.test_event_subscribers import new_loan, set_business_date

from microlend.core.clock import FixedClock, SystemClock, set_clock, utcnow
from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.tables import AuditRow
from microlend.parties.tables import CustomerRow
from microlend.servicing import cob, service
from microlend.servicing.events import LoanBecameOverdue, LoanBucketChanged
from microlend.servicing.service import collecting

OVERDUE_DAY = date(2026, 2, 16)  # the first installment fell due on 2026-02-15, unpaid
#: 10:00 in Shanghai on the day after the close
MORNING = datetime(2026, 2, 17, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[FixedClock]:
    fixed = FixedClock(MORNING)
    set_clock(fixed)
    try:
        yield fixed
    finally:
        set_clock(SystemClock())


def borrower(bank: TenantKit, contacts: list[str] | None = None) -> int:
    tag = uuid.uuid4().hex
    with bank.uow_factory() as u:
        row = CustomerRow(tenant_id=bank.tenant.id, kind="person", name="孙老板", id_number_enc="x",
                          id_number_index=f"id-{tag}", id_number_masked="x", phone_enc="x", phone_index=f"p-{tag}",
                          phone_masked="x", marketing_consent=True, branch="西湖支行",
                          attributes={"contacts": [{"name": n} for n in (contacts or [])]}, created_at=utcnow(),
                          updated_at=utcnow())
        u.session.add(row)
        u.session.flush()
        u.commit()
        return int(row.id)


def overdue_case(bank: TenantKit) -> tuple[int, collecting.CaseView]:
    admin = bank.principal("admin")
    loan_id = new_loan(bank, admin, borrower(bank, ["王小明"]))
    set_business_date(bank, OVERDUE_DAY)
    cob.run_close_of_business(bank.uow_factory(), admin)
    [case] = [c for c in collecting.list_cases(bank.uow_factory(), admin) if c.loan_id == loan_id]
    return loan_id, case


def test_a_case_opens_when_close_of_business_finds_the_loan_overdue(bank: TenantKit, clock: FixedClock) -> None:
    loan_id, case = overdue_case(bank)
    assert (case.status, case.bucket, case.days_past_due, case.queue, case.next_action) == (
        "open", "M1", 1, "early", "reminder")
    assert case.branch == "西湖支行" and case.registered_contacts == ["王小明"]
    loan = service.get_loan(bank.uow_factory(), bank.principal("admin"), loan_id)
    first = loan.installments[0]
    assert isinstance(case.amount_overdue, Decimal) and first.status == "overdue"
    assert case.amount_overdue == first.principal + first.interest + first.fee + loan.penalty_due > 0
    # a second delivery of the event opens no second case
    collecting.open_case_on_overdue(bank.uow_factory(), LoanBecameOverdue(bank.tenant.id, loan_id, OVERDUE_DAY, 1))
    assert len([c for c in collecting.list_cases(bank.uow_factory(), bank.principal("collector"))
                if c.loan_id == loan_id]) == 1


def test_the_case_is_rerouted_when_the_loan_moves_bucket(bank: TenantKit, clock: FixedClock) -> None:
    loan_id, case = overdue_case(bank)
    collector = bank.principal("collector")
    collecting.assign(bank.uow_factory(), collector, case.id, collector.username)
    collecting.follow_bucket(bank.uow_factory(), LoanBucketChanged(bank.tenant.id, loan_id, date(2026, 3, 18),
                                                                   "M1", "M2", 31))
    moved = collecting.get_case(bank.uow_factory(), collector, case.id).case
    assert (moved.bucket, moved.queue, moved.next_action, moved.assignee) == ("M2", "officer", "officer_call", None)
    # the re-route is on the case's own record (it ends the collector's assignment for the performance figures)
    kinds = [a.kind for a in collecting.get_case(bank.uow_factory(), collector, case.id).actions]
    assert kinds.count("reroute") == 1 and kinds.index("assign") < kinds.index("reroute")
    collecting.follow_bucket(bank.uow_factory(), LoanBucketChanged(bank.tenant.id, loan_id, date(2026, 4, 17),
                                                                   "M2", "M3", 61))
    assert collecting.get_case(bank.uow_factory(), collector, case.id).case.queue == "field"


def test_conduct_rules_refuse_with_the_rules_name_and_record_the_attempt(bank: TenantKit, clock: FixedClock) -> None:
    _, case = overdue_case(bank)
    collector = bank.principal("collector")
    clock._at = datetime(2026, 2, 17, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    with pytest.raises(Conflict) as late:
        collecting.log_contact(bank.uow_factory(), collector, case.id, channel="call", party="borrower",
                               outcome="no_answer")
    assert late.value.field == "allowed_hours" and "allowed_hours" in late.value.message
    clock._at = MORNING
    with pytest.raises(Conflict) as stranger:
        collecting.log_contact(bank.uow_factory(), collector, case.id, channel="call", party="邻居",
                               outcome="no_answer")
    assert stranger.value.field == "allowed_party"
    with pytest.raises(Conflict) as free_text:
        collecting.log_contact(bank.uow_factory(), collector, case.id, channel="sms", party="borrower",
                               outcome="no_answer", template="pay now or else")
    assert free_text.value.field == "template"
    collecting.log_contact(bank.uow_factory(), collector, case.id, channel="call", party="王小明", outcome="no_answer")
    collecting.log_contact(bank.uow_factory(), collector, case.id, channel="sms", party="borrower",
                           outcome="no_answer", template="reminder")
    collecting.log_contact(bank.uow_factory(), collector, case.id, channel="call", party="borrower",
                           outcome="refused")
    with pytest.raises(Conflict) as fourth:
        collecting.log_contact(bank.uow_factory(), collector, case.id, channel="call", party="borrower",
                               outcome="promise")
    assert fourth.value.field == "daily_limit"
    clock.advance(timedelta(days=1))  # the next day in Shanghai: contacts may go again
    collecting.log_contact(bank.uow_factory(), collector, case.id, channel="visit", party="borrower",
                           outcome="promise")
    actions = collecting.get_case(bank.uow_factory(), collector, case.id).actions
    assert [(a.kind, a.rule) for a in actions] == [
        ("blocked", "allowed_hours"), ("blocked", "allowed_party"), ("blocked", "template"), ("contact", None),
        ("contact", None), ("contact", None), ("blocked", "daily_limit"), ("contact", None)]
    with pytest.raises(PermissionDenied):
        collecting.log_contact(bank.uow_factory(), bank.principal("marketer"), case.id, channel="call",
                               party="borrower", outcome="refused")


def test_promises_are_kept_or_broken_at_close_of_business_and_the_case_closes_on_cure(
    bank: TenantKit, clock: FixedClock
) -> None:
    loan_id, case = overdue_case(bank)
    admin, collector = bank.principal("admin"), bank.principal("collector")
    business = date(2026, 2, 17)
    broken = collecting.record_promise(bank.uow_factory(), collector, case.id, amount="100.00",
                                       promise_date=business)
    assert collecting.check_promises(bank.uow_factory(), admin, business) == {"promises_kept": 0,
                                                                             "promises_broken": 1}
    kept = collecting.record_promise(bank.uow_factory(), collector, case.id, amount=str(case.amount_overdue),
                                     promise_date=business + timedelta(days=3))
    assert collecting.check_promises(bank.uow_factory(), admin, business) == {"promises_kept": 0,
                                                                             "promises_broken": 0}
    service.post_repayment(bank.uow_factory(), admin, loan_id, case.amount_overdue)
    assert collecting.check_promises(bank.uow_factory(), admin, business) == {"promises_kept": 1,
                                                                             "promises_broken": 0}
    statuses = {a.id: a.promise_status for a in collecting.get_case(bank.uow_factory(), collector, case.id).actions}
    assert (statuses[broken.id], statuses[kept.id]) == ("broken", "kept")
    with pytest.raises(ValidationError):
        collecting.record_promise(bank.uow_factory(), collector, case.id, amount="-1", promise_date=business)

    cob.run_close_of_business(bank.uow_factory(), admin)  # the loan is current again: the case is cured
    closed = collecting.get_case(bank.uow_factory(), collector, case.id).case
    assert (closed.status, closed.close_reason) == ("closed", "cured")
    assert collecting.list_cases(bank.uow_factory(), collector) == [] or all(
        c.loan_id != loan_id for c in collecting.list_cases(bank.uow_factory(), collector))


def test_the_api_serves_the_queue_contacts_promises_and_refusals(api: Api) -> None:
    _, case = overdue_case(api.kit)
    username, _ = api.kit.user("collector")
    headers, marketer = api.token_for(username), api.token("marketer")  # signed in by the wall clock
    set_clock(FixedClock(MORNING))  # the contacts happen at 10:00 in Shanghai
    try:
        _work_the_case_over_http(api, case, username, headers, marketer)
    finally:
        set_clock(SystemClock())


def _work_the_case_over_http(api: Api, case: collecting.CaseView, username: str, headers: dict[str, str],
                             marketer: dict[str, str]) -> None:
    r = api.client.get("/api/v1/collections/cases", headers=headers)
    assert r.status_code == 200, r.text
    [item] = [i for i in r.json()["items"] if i["id"] == case.id]
    assert item["bucket"] == "M1" and item["amount_overdue"] == f"{case.amount_overdue:.2f}"
    assert item["assignee"] is None and item["next_action"] == "reminder" and item["loan_id"] == case.loan_id
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/assign", json={"assignee": username}, headers=headers)
    assert r.status_code == 200 and r.json()["assignee"] == username, r.text
    mine = api.client.get("/api/v1/collections/cases?mine=true", headers=headers).json()["items"]
    assert [i["id"] for i in mine] == [case.id]
    assert case.id not in [i["id"] for i in api.client.get("/api/v1/collections/cases?unassigned=true",
                                                            headers=headers).json()["items"]]
    later = api.client.get(f"/api/v1/collections/cases?after={case.id - 1}&limit=1", headers=headers).json()["items"]
    assert [i["id"] for i in later] == [case.id]
    assert api.client.get(f"/api/v1/collections/cases?after={case.id}", headers=headers).json()["items"] == []
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/contacts",
                        json={"channel": "call", "party": "borrower", "outcome": "promise"}, headers=headers)
    assert r.status_code == 201 and r.json()["kind"] == "contact", r.text
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/contacts",
                        json={"channel": "call", "party": "邻居", "outcome": "promise"}, headers=headers)
    assert r.status_code == 409 and "allowed_party" in r.text
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/contacts",
                        json={"channel": "fax", "party": "borrower", "outcome": "promise"}, headers=headers)
    assert r.status_code == 422
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/promises",
                        json={"amount": "500.00", "promise_date": "2026-02-20"}, headers=headers)
    assert r.status_code == 201 and r.json()["amount"] == "500.00" and r.json()["promise_status"] == "pending"
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/promises",
                        json={"amount": "abc", "promise_date": "2026-02-20"}, headers=headers)
    assert r.status_code == 422
    r = api.client.post(f"/api/v1/collections/cases/{case.id}/close", json={"reason": "cured"}, headers=headers)
    assert r.status_code == 409  # still overdue
    assert api.client.get("/api/v1/collections/cases", headers=marketer).status_code == 403
    assert api.client.get("/api/v1/collections/cases/999999", headers=headers).status_code == 404


def test_the_collectors_pages_take_a_case_log_a_contact_and_record_a_promise(api: Api) -> None:
    _, case = overdue_case(api.kit)
    username, _ = api.kit.user("collector")
    client = api.client
    sign_in_page(client, username, next="/collections")
    set_clock(FixedClock(MORNING))
    try:
        queue = client.get("/collections", headers={"Accept-Language": "zh-CN"})
        assert queue.status_code == 200 and "未分配" in queue.text and f"/collections/cases/{case.id}" in queue.text
        assert client.post(f"/collections/cases/{case.id}/take", follow_redirects=False).status_code == 303
        mine = client.get("/collections", headers={"Accept-Language": "en"})
        assert "My cases" in mine.text and f"#{case.id}" in mine.text.split("Unassigned")[0]
        r = client.post(f"/collections/cases/{case.id}/contact",
                        data={"channel": "call", "party": "邻居", "outcome": "promise"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("rule=allowed_party")
        refused = client.get(r.headers["location"], headers={"Accept-Language": "zh-CN"})
        assert "仅限借款人及登记联系人" in refused.text and "allowed_party" in refused.text
        r = client.post(f"/collections/cases/{case.id}/contact",
                        data={"channel": "call", "party": "borrower", "outcome": "promise"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("done=contact")
        r = client.post(f"/collections/cases/{case.id}/promise",
                        data={"amount": "200.00", "promise_date": "2026-02-19"}, follow_redirects=False)
        assert r.status_code == 303
        page = client.get(f"/collections/cases/{case.id}", headers={"Accept-Language": "en"})
        assert "Promise to pay" in page.text and "Pending" in page.text and "Contact refused" in page.text
        assert client.post(f"/collections/cases/{case.id}/promise", data={"amount": "1", "promise_date": "x"}
                           ).status_code == 422
    finally:
        set_clock(SystemClock())
    marketer, _ = api.kit.user("marketer")
    sign_in_page(client, marketer, next="/")
    assert client.get("/collections").status_code == 403


def test_the_workers_close_of_business_finds_a_promise_broken(bank: TenantKit, clock: FixedClock) -> None:
    from microlend import worker

    _, case = overdue_case(bank)
    admin, collector = bank.principal("admin"), bank.principal("collector")
    business = date(2026, 2, 17)
    promise = collecting.record_promise(bank.uow_factory(), collector, case.id, amount="50.00",
                                        promise_date=business)
    figures = worker.close_of_business(bank.uow_factory(), admin, business)
    assert figures["closed"] == 1 and (figures["promises_kept"], figures["promises_broken"]) == (0, 1)
    after = collecting.get_case(bank.uow_factory(), collector, case.id)
    assert [a.promise_status for a in after.actions if a.id == promise.id] == ["broken"]
    assert after.case.next_action == "broken_promise_call"


def test_a_promise_honoured_by_the_payment_that_cures_the_loan_is_kept_when_the_case_closes(
    bank: TenantKit, clock: FixedClock
) -> None:
    from microlend import worker

    loan_id, case = overdue_case(bank)
    admin, collector = bank.principal("admin"), bank.principal("collector")
    business = date(2026, 2, 17)
    kept = collecting.record_promise(bank.uow_factory(), collector, case.id, amount=str(case.amount_overdue),
                                     promise_date=business + timedelta(days=5))
    unpaid = collecting.record_promise(bank.uow_factory(), collector, case.id, amount=str(case.amount_overdue * 3),
                                       promise_date=business + timedelta(days=5))
    service.post_repayment(bank.uow_factory(), admin, loan_id, case.amount_overdue)
    # the close finds the loan current (the case closes as cured) before it looks at promises
    figures = worker.close_of_business(bank.uow_factory(), admin, business)
    after = collecting.get_case(bank.uow_factory(), collector, case.id)
    assert (after.case.status, after.case.close_reason) == ("closed", "cured")
    statuses = {a.id: a.promise_status for a in after.actions}
    assert (statuses[kept.id], statuses[unpaid.id]) == ("kept", "closed")
    assert figures["promises_broken"] == 0
    with bank.uow_factory() as u:
        kept_audit = u.session.execute(select(AuditRow.action).where(
            AuditRow.tenant_id == bank.tenant.id, AuditRow.object_id == str(case.id),
            AuditRow.action == "collections.promise_kept")).scalars().all()
    assert len(kept_audit) == 1


def test_the_bank_sets_its_strategy_and_conduct_rules_over_the_api(api: Api) -> None:
    admin, collector = api.token("admin"), api.token("collector")
    current = api.client.get("/api/v1/collections/settings", headers=collector)
    assert current.status_code == 200 and current.json()["allowed_end"] == "21:00"
    body = current.json() | {"allowed_start": "09:00", "allowed_end": "20:00", "max_contacts_per_day": 2}
    body["routes"][0] = {"bucket": "M1", "queue": "phone", "actions": ["call"], "large_amount": "50000.00",
                         "large_queue": "senior"}
    body["templates"]["reminder"] = {"zh": "您好，贷款已逾期{days}天，金额{amount}元。",
                                     "en": "{days} days, {amount} CNY."}
    assert api.client.put("/api/v1/collections/settings", json=body, headers=collector).status_code == 403
    r = api.client.put("/api/v1/collections/settings", json=body, headers=admin)
    assert r.status_code == 200 and r.json()["routes"][0]["queue"] == "phone", r.text
    settings = collecting.collection_settings(api.kit.uow_factory(), api.kit.principal("collector"))
    assert settings.max_contacts_per_day == 2 and settings.routes[0].large_queue == "senior"
    assert settings.routes[0].large_amount == Decimal("50000.00")
    with api.kit.uow_factory() as u:
        [row] = u.session.execute(select(AuditRow).where(
            AuditRow.tenant_id == api.kit.tenant.id, AuditRow.action == "collections.settings")).scalars().all()
    assert row.before["allowed_start"] == "08:00" and row.after["allowed_start"] == "09:00"

    def refused(change: dict[str, object], why: str) -> None:
        r = api.client.put("/api/v1/collections/settings", json=body | change, headers=admin)
        assert r.status_code == 422 and why in r.text, r.text

    refused({"templates": {"reminder": {"zh": "再不还钱就曝光你", "en": "Pay now."}}}, "曝光")
    refused({"templates": {"reminder": {"zh": "请还款{phone}", "en": "Pay."}}}, "unknown field")
    refused({"allowed_start": "06:00"}, "07:00")
    refused({"allowed_end": "07:00"}, "after allowed_start")
    refused({"allowed_end": "25:00"}, "allowed_end")
    refused({"max_contacts_per_day": 50}, "max_contacts_per_day")
    refused({"routes": [body["routes"][0]] * 3}, "one route for each")
    refused({"timezone": "Moon/Base"}, "Moon/Base")
    after = collecting.collection_settings(api.kit.uow_factory(), api.kit.principal("collector"))
    assert after == settings  # nothing refused was saved


def test_the_rules_page_shows_collectors_the_rules_and_lets_an_administrator_change_them(api: Api) -> None:
    client = api.client
    collector, _ = api.kit.user("collector")
    sign_in_page(client, collector, next="/collections/settings")
    seen = client.get("/collections/settings", headers={"Accept-Language": "zh-CN"})
    assert seen.status_code == 200 and "催收规则" in seen.text and 'data-testid="hours"' in seen.text
    assert 'data-testid="settings-form"' not in seen.text
    assert client.post("/collections/settings", data={"allowed_start": "09:00"}).status_code == 403
    admin, _ = api.kit.user("admin")
    sign_in_page(client, admin, next="/collections/settings")
    form = client.get("/collections/settings", headers={"Accept-Language": "en"})
    assert 'data-testid="settings-form"' in form.text and "Strategy by bucket" in form.text
    current = collecting.collection_settings(api.kit.uow_factory(), api.kit.principal("admin"))
    data = {"allowed_start": "09:00", "allowed_end": "20:30", "max_contacts_per_day": "2"}
    for i, r in enumerate(current.routes):
        data |= {f"queue_{i}": r.queue, f"actions_{i}": "，".join(r.actions), f"large_amount_{i}": "0",
                 f"large_queue_{i}": ""}
    for name, texts in current.templates.items():
        data |= {f"template_{name}_zh": texts["zh"], f"template_{name}_en": texts["en"]}
    r = client.post("/collections/settings", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/collections/settings?saved=1", r.text
    after = collecting.collection_settings(api.kit.uow_factory(), api.kit.principal("admin"))
    assert (after.allowed_end, after.max_contacts_per_day, after.routes) == (time(20, 30), 2, current.routes)
    rude = data | {"template_reminder_zh": "再不还钱就告诉你家人"}
    refused = client.post("/collections/settings", data=rude, headers={"Accept-Language": "en"})
    assert refused.status_code == 422 and "家人" in refused.text
    assert collecting.collection_settings(api.kit.uow_factory(), api.kit.principal("admin")) == after


PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
PDF = b"%PDF-1.4\n" + b"x" * 300


def test_a_collector_attaches_a_photo_or_pdf_and_only_the_bank_reads_it(
    api: Api, new_tenant: Callable[[], TenantKit]
) -> None:
    _, case = overdue_case(api.kit)
    headers = api.token("collector")
    url = f"/api/v1/collections/cases/{case.id}/attachments"
    r = api.client.post(url, files={"file": ("../../门店照片.png", PNG, "image/png")}, headers=headers)
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["filename"] == "门店照片.png" and photo["content_type"] == "image/png" and photo["size"] == len(PNG)
    r = api.client.post(url, files={"file": ("letter", PDF, "image/png")}, headers=headers)  # the bytes decide
    assert r.status_code == 201 and (r.json()["content_type"], r.json()["filename"]) == ("application/pdf",
                                                                                        "letter.pdf")
    refused = [api.client.post(url, files={"file": ("x.png", b"GIF89a" + bytes(10), "image/png")}, headers=headers),
               api.client.post(url, files={"file": ("x.html", b"<script>alert(1)</script>", "text/html")},
                               headers=headers),
               api.client.post(url, files={"file": ("big.pdf", b"%PDF-" + bytes(5 * 1024 * 1024), "application/pdf")},
                               headers=headers),
               api.client.post(url, files={"file": ("empty.png", b"", "image/png")}, headers=headers)]
    assert [x.status_code for x in refused] == [422, 422, 413, 422]  # a body that large stops at the door
    assert "JPEG or PNG" in refused[0].text
    listed = api.client.get(url, headers=headers).json()
    assert [a["id"] for a in listed] == [photo["id"], r.json()["id"]]
    got = api.client.get(f"/api/v1/collections/attachments/{photo['id']}", headers=headers)
    assert got.status_code == 200 and got.content == PNG and got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("attachment;") and got.headers["x-content-type-options"]
    assert api.client.get(f"/api/v1/collections/attachments/{photo['id']}",
                          headers=api.token("marketer")).status_code == 403
    other = Api(api.client, new_tenant())
    theirs = other.token("collector")
    assert api.client.get(f"/api/v1/collections/attachments/{photo['id']}", headers=theirs).status_code == 404
    assert api.client.post(url, files={"file": ("x.png", PNG, "image/png")}, headers=theirs).status_code == 404
    assert len(api.client.get(url, headers=headers).json()) == 2  # nothing added by the other bank
    with api.kit.uow_factory() as u:
        audited = u.session.execute(select(AuditRow.after).where(
            AuditRow.tenant_id == api.kit.tenant.id, AuditRow.action == "collections.attachment")).scalars().all()
    assert len(audited) == 2 and all("门店" not in str(a) and "filename" not in a for a in audited)
    detail = collecting.get_case(api.kit.uow_factory(), api.kit.principal("collector"), case.id)
    assert [a.text for a in detail.actions if a.kind == "attachment"] == ["门店照片.png", "letter.pdf"]


def test_the_case_page_uploads_a_photo_and_links_it(api: Api) -> None:
    _, case = overdue_case(api.kit)
    username, _ = api.kit.user("collector")
    client = api.client
    sign_in_page(client, username, next="/collections")
    r = client.post(f"/collections/cases/{case.id}/attachment", files={"file": ("visit.png", PNG, "image/png")},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=attached"), r.text
    shown = client.get(r.headers["location"], headers={"Accept-Language": "zh-CN"})
    assert 'data-testid="attachments"' in shown.text and "附件已保存" in shown.text
    [href] = [line.split('href="')[1].split('"')[0] for line in shown.text.splitlines()
              if 'data-testid="attachment"' in line]
    assert client.get(href).content == PNG
    bad = client.post(f"/collections/cases/{case.id}/attachment", files={"file": ("a.txt", b"hello", "text/plain")},
                      headers={"Accept-Language": "zh-CN"})
    assert bad.status_code == 422 and "JPEG 或 PNG" in bad.text
