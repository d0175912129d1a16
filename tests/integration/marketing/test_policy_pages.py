"""The contact policy and gateway settings page, and a campaign's approval by a second person, through HTTP
(cookie sign-in) on both databases, in English and Chinese; another bank's campaign is not found."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from tests.battery import audit_count
from tests.conftest import Api, sign_in_page

from microlend.core.identity import Principal
from microlend.marketing.tables import CampaignRow, ContactPolicyRow

POLICY = {"cap_max_contacts": "3", "cap_window_days": "14", "holdout_pct": "7.5", "quiet_start": "21:30",
          "quiet_end": "08:15", "timezone": "Asia/Shanghai", "throttle_per_s": "40",
          "public_host": "https://www.bank.example.cn", "launch_approval": "on"}


@pytest.fixture
def other(app_client: Any, new_tenant: Any) -> Api:
    return Api(app_client, new_tenant())


def sign_in(api: Api, *roles: str, lang: str = "en") -> Principal:
    api.client.cookies.clear()
    username, who = api.kit.user(*roles)
    sign_in_page(api.client, username)
    api.client.cookies.set("ml_lang", lang)
    return who


def draft(api: Api) -> int:
    api.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
    r = api.client.post("/marketing/campaigns", data={"name": "spring", "target": "segment:all", "channel": "sms"},
                        follow_redirects=False)
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/marketing/campaigns/(\d+)", r.headers["location"])
    assert match
    return int(match.group(1))


def test_the_admin_sets_the_policy_and_a_marketer_reads_it(api: Api) -> None:
    sign_in(api, "admin", lang="zh_CN")
    page = api.client.get("/marketing/policy")
    assert page.status_code == 200 and "接触策略" in page.text and 'data-testid="policy-default"' in page.text
    r = api.client.post("/marketing/policy", data=POLICY, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/marketing/policy?saved=1"
    with api.kit.uow_factory() as u:
        row = u.session.get(ContactPolicyRow, api.kit.tenant.id)
        assert row is not None
        assert (row.cap_max_contacts, row.cap_window_days, row.holdout_share_bp, row.quiet_start, row.quiet_end,
                row.throttle_per_s, row.launch_approval) == (3, 14, 750, "21:30", "08:15", 40, True)
    sign_in(api, "marketer")
    page = api.client.get("/marketing/policy")
    assert page.status_code == 200 and 'value="7.5"' in page.text and 'data-testid="policy-save"' not in page.text
    before = audit_count(api)
    assert api.client.post("/marketing/policy", data={**POLICY, "cap_max_contacts": "9"}).status_code == 403
    assert audit_count(api) == before
    api.client.cookies.clear()


def test_a_bad_value_is_shown_on_the_form_and_nothing_is_saved(api: Api) -> None:
    sign_in(api, "admin")
    for field, value in (("quiet_start", "25:00"), ("holdout_pct", "abc"), ("holdout_pct", "80"),
                         ("public_host", "https://bank.cn/x"), ("timezone", "Mars/Base")):
        r = api.client.post("/marketing/policy", data={**POLICY, field: value})
        assert r.status_code == 422 and 'role="alert"' in r.text, (field, r.status_code)
    with api.kit.uow_factory() as u:
        assert u.session.get(ContactPolicyRow, api.kit.tenant.id) is None
    api.client.cookies.clear()


def test_gateway_credentials_are_kept_and_never_shown(api: Api) -> None:
    sign_in(api, "admin")
    form: dict[str, Any] = {"url": "https://sms.example.com/v1", "api_key": "sk-live-1234567890",
                            "secret": "whsec-0987654321", "batch_size": "200", "throttle_per_s": "100"}
    assert api.client.post("/marketing/policy/gateways/sms", data=form, follow_redirects=False).status_code == 303
    page = api.client.get("/marketing/policy").text
    assert "sk********90" in page and "1234567890" not in page and "0987654321" not in page
    # saving again without the key keeps the stored one
    api.client.post("/marketing/policy/gateways/sms", data={**form, "api_key": "", "secret": ""})
    assert "sk********90" in api.client.get("/marketing/policy").text
    assert api.client.post("/marketing/policy/gateways/fax", data=form).status_code == 422
    api.client.cookies.clear()


def test_a_campaign_is_approved_by_a_second_person_then_launched(api: Api, other: Api) -> None:
    sign_in(api, "admin")
    api.client.post("/marketing/policy", data=POLICY)
    maker = sign_in(api, "marketer")
    cid = draft(api)
    page = api.client.get(f"/marketing/campaigns/{cid}").text
    assert 'data-testid="approve"' not in page  # not for the one who made it
    r = api.client.post(f"/marketing/campaigns/{cid}/launch")
    assert r.status_code == 409 and "approval" in r.text
    assert api.client.post(f"/marketing/campaigns/{cid}/approve").status_code == 403
    sign_in(other, "marketer")  # the same client: another bank's marketer signs in
    assert other.client.post(f"/marketing/campaigns/{cid}/approve").status_code == 404
    checker = sign_in(api, "marketer")
    page = api.client.get(f"/marketing/campaigns/{cid}").text
    assert 'data-testid="approve"' in page
    assert api.client.post(f"/marketing/campaigns/{cid}/approve", follow_redirects=False).status_code == 303
    with api.kit.uow_factory() as u:
        row = u.session.execute(select(CampaignRow).where(CampaignRow.id == cid)).scalar_one()
        assert (row.status, row.approved_by, row.created_by) == ("approved", checker.username, maker.username)
    page = api.client.get(f"/marketing/campaigns/{cid}").text
    assert 'data-testid="approved-by"' in page
    assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 200
    api.client.cookies.clear()
