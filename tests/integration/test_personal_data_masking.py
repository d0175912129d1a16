"""A borrower's username is their mobile: auditors and administrators see it masked, in the audit trail (API and
page, before/after images included) and in the list of users, unless they may see personal data."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

from tests.conftest import Api

from microlend.core import audit
from microlend.core.crypto import mask, mask_phone
from microlend.core.identity import Permission, Principal, Role
from microlend.demo import identities
from microlend.origination import borrowers

_rng = random.Random(11)


def _borrower(api: Api) -> tuple[str, str, str]:
    """Register a borrower, and audit a change of theirs whose images hold an ID number and a phone; their
    mobile, ID number and username."""
    mobile = identities.mobile(_rng)
    id_number = identities.resident_id(_rng, identities.birth_date_for_age(_rng, 40, date(2026, 1, 1)))
    reg = borrowers.register(api.kit.uow_factory(), borrowers.Registration(
        bank=api.kit.tenant.name, kind="person", name="王小店", id_number=id_number, mobile=mobile,
        password="borrower-pass-1", industry="retail", annual_turnover=Decimal("300000"),
        years_in_business=Decimal("3")))
    with api.kit.uow_factory() as u:
        audit.record(u.session, reg.principal, "customer.update", "customer", reg.customer_id,
                     before={"phone": "13900000000"}, after={"phone": mobile, "contacts": [{"id": id_number}]},
                     reason=f"changed at the request of {mobile}")
        u.commit()
    return mobile, id_number, reg.username


def test_an_auditor_sees_the_audit_trail_with_mobiles_and_id_numbers_masked(api: Api) -> None:
    mobile, id_number, username = _borrower(api)
    r = api.client.get("/api/v1/audit?limit=50", headers=api.token("auditor"))
    assert r.status_code == 200
    assert mobile not in r.text and id_number not in r.text
    records = r.json()
    [update] = [x for x in records if x["action"] == "customer.update"]
    assert update["after"] == {"phone": mask_phone(mobile), "contacts": [{"id": mask(id_number)}]}
    assert update["before"] == {"phone": "139****0000"}
    assert update["actor"] == username.replace(mobile, mask_phone(mobile))
    assert update["reason"] == f"changed at the request of {mask_phone(mobile)}"
    created = [x for x in records if x["action"] == "user.create" and x["after"]["username"].endswith(
        username.split("@", 1)[1])]
    assert created and created[0]["after"]["username"] == username.replace(mobile, mask_phone(mobile))


def test_the_audit_page_masks_the_mobile_a_borrower_acts_under(api: Api) -> None:
    mobile, _id_number, _username = _borrower(api)
    username, _ = api.kit.user("auditor")
    api.client.cookies.clear()
    r = api.client.post("/login", data={"username": username, "password": "correct-horse-1", "next": "/audit"},
                        follow_redirects=False)
    assert r.status_code == 303
    page = api.client.get("/audit")
    api.client.cookies.clear()
    assert page.status_code == 200 and "Chain broken" not in page.text and "链已断" not in page.text
    assert mobile not in page.text and mask_phone(mobile) in page.text  # the borrower's change


def test_an_administrator_sees_borrower_usernames_masked(api: Api) -> None:
    mobile, _id_number, username = _borrower(api)
    r = api.client.get("/api/v1/users", headers=api.token("admin"))
    assert r.status_code == 200
    assert mobile not in r.text
    assert username.replace(mobile, mask_phone(mobile)) in {u["username"] for u in r.json()}


def test_a_role_that_may_see_personal_data_sees_them_unmasked(api: Api) -> None:
    mobile, id_number, username = _borrower(api)
    assert Permission.VIEW_PERSONAL_DATA not in permissions_of("admin") | permissions_of("auditor")
    users = api.client.get("/api/v1/users", headers=api.token("admin", "credit_officer")).json()
    assert username in {u["username"] for u in users}
    records = api.client.get("/api/v1/audit?object_type=customer", headers=api.token("auditor", "collector")).json()
    assert any(x["after"] == {"phone": mobile, "contacts": [{"id": id_number}]} for x in records)


def permissions_of(*roles: str) -> frozenset[Permission]:
    return Principal(0, 0, "x", frozenset(Role(r) for r in roles)).permissions
