"""A bank's reason-code catalogue (原因码目录): read by lint and by every decision's explanation, edited by a
policy analyst, each change audited."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.reasons import CATALOGUE, Catalogue, Reason, placeholders
from microlend.decisioning.tables import ReasonCodeRow

CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,59}$")
FIELD = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")
TEXT_FIELDS = ("borrower_zh", "borrower_en", "staff_zh", "staff_en")


def _reason(row: ReasonCodeRow) -> Reason:
    return Reason(row.code, row.borrower_zh, row.borrower_en, row.tellable, row.staff_zh, row.staff_en,
                  tuple((str(p[0]), str(p[1])) for p in row.params))


def catalogue(session: Session, tenant_id: int) -> dict[str, Reason]:
    """The bank's catalogue by code."""
    rows = session.execute(select(ReasonCodeRow).where(ReasonCodeRow.tenant_id == tenant_id)).scalars()
    return {r.code: _reason(r) for r in rows}


def codes_catalogue(session: Session, tenant_id: int, codes: Sequence[str]) -> dict[str, Reason]:
    """The entries of just these codes (a decision's explanation reads no more)."""
    if not codes:
        return {}
    rows = session.execute(select(ReasonCodeRow).where(
        ReasonCodeRow.tenant_id == tenant_id, ReasonCodeRow.code.in_(sorted(set(codes))))).scalars()
    return {r.code: _reason(r) for r in rows}


def seed(session: Session, tenant_id: int, who: str = "system") -> int:
    """Add the built-in codes the bank's catalogue lacks (a new bank starts with all of them)."""
    have = set(session.execute(select(ReasonCodeRow.code).where(ReasonCodeRow.tenant_id == tenant_id)).scalars())
    now = utcnow()
    added = 0
    for r in CATALOGUE.values():
        if r.code in have:
            continue
        session.add(ReasonCodeRow(tenant_id=tenant_id, code=r.code, borrower_zh=r.zh_cn, borrower_en=r.en,
                                  staff_zh=r.staff_zh or r.zh_cn, staff_en=r.staff_en or r.en, tellable=r.tellable,
                                  params=[list(p) for p in r.params], updated_by=who, updated_at=now))
        added += 1
    session.flush()
    return added


@dataclass(frozen=True)
class ReasonCode:
    code: str
    borrower_zh: str
    borrower_en: str
    staff_zh: str
    staff_en: str
    tellable: bool
    params: tuple[tuple[str, str], ...]
    updated_by: str

    @classmethod
    def from_row(cls, row: ReasonCodeRow) -> ReasonCode:
        return cls(row.code, row.borrower_zh, row.borrower_en, row.staff_zh, row.staff_en, row.tellable,
                   tuple((str(p[0]), str(p[1])) for p in row.params), row.updated_by)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "borrower_zh": self.borrower_zh, "borrower_en": self.borrower_en,
                "staff_zh": self.staff_zh, "staff_en": self.staff_en, "tellable": self.tellable,
                "params": {name: field for name, field in self.params}, "updated_by": self.updated_by}


def list_reason_codes(uow: UnitOfWork, who: Principal) -> list[ReasonCode]:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        rows = uow.session.execute(select(ReasonCodeRow).where(ReasonCodeRow.tenant_id == who.tenant_id)
                                   .order_by(ReasonCodeRow.code)).scalars()
        return [ReasonCode.from_row(r) for r in rows]


def get_reason_code(uow: UnitOfWork, who: Principal, code: str) -> ReasonCode:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        return ReasonCode.from_row(_row(uow.session, who.tenant_id, code))


def _row(s: Session, tenant_id: int, code: str) -> ReasonCodeRow:
    row = s.execute(select(ReasonCodeRow).where(ReasonCodeRow.tenant_id == tenant_id,
                                                ReasonCodeRow.code == code)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"code: no reason code '{code}' in this bank's catalogue", field="code")
    return row


def check_entry(code: str, texts: dict[str, str], params: dict[str, str]) -> None:
    """Refuse an entry a decision could not explain with: every text given, every parameter a text names
    declared with the input field whose bound gives it, and no parameter declared but unused."""
    if not CODE.match(code):
        raise ValidationError("code: upper-case letters, digits and _, starting with a letter (at most 60)",
                              field="code")
    for name in TEXT_FIELDS:
        text = texts.get(name, "")
        if not text.strip():
            raise ValidationError(f"{name}: the text must not be empty", field=name)
        if len(text) > 500:
            raise ValidationError(f"{name}: at most 500 characters", field=name)
        try:
            used = placeholders(text)
        except ValueError as exc:
            raise ValidationError(f"{name}: {exc}", field=name) from None
        for p in used:
            if p not in params:
                raise ValidationError(f"{name}: '{{{p}}}' is not a declared parameter of {code}", field=name)
    for p, input_field in params.items():
        if not p.isidentifier():
            raise ValidationError(f"params: '{p}' is not a parameter name", field="params")
        if not FIELD.match(input_field):
            raise ValidationError(f"params: '{input_field}' is not an input field (like customer.age)",
                                  field="params")
        if not any(p in placeholders(texts[n]) for n in TEXT_FIELDS):
            raise ValidationError(f"params: '{p}' is not used by any text", field="params")


def save_reason_code(uow: UnitOfWork, who: Principal, code: str, *, borrower_zh: str, borrower_en: str,
                     staff_zh: str, staff_en: str, tellable: bool,
                     params: dict[str, str] | None = None, create: bool | None = None) -> ReasonCode:
    """Add a reason code to the bank's catalogue or change one (an analyst's act, audited with before and
    after); `create` True only adds (409 if the code exists), False only changes (404 if it does not).
    Decisions made earlier are explained with the catalogue as it then reads."""
    who.require(Permission.EDIT_POLICIES)
    code = code.strip()
    texts = {"borrower_zh": borrower_zh.strip(), "borrower_en": borrower_en.strip(), "staff_zh": staff_zh.strip(),
             "staff_en": staff_en.strip()}
    declared = {k.strip(): v.strip() for k, v in (params or {}).items()}
    check_entry(code, texts, declared)
    with uow:
        s = uow.session
        row = s.execute(select(ReasonCodeRow).where(ReasonCodeRow.tenant_id == who.tenant_id,
                                                    ReasonCodeRow.code == code)).scalar_one_or_none()
        before = None if row is None else ReasonCode.from_row(row).as_dict()
        if create is True and row is not None:
            raise Conflict(f"code: '{code}' is already in the bank's catalogue; change it instead", field="code")
        if create is False and row is None:
            raise NotFound(f"code: no reason code '{code}' in this bank's catalogue", field="code")
        if row is None:
            row = ReasonCodeRow(tenant_id=who.tenant_id, code=code)
            s.add(row)
        row.borrower_zh, row.borrower_en = texts["borrower_zh"], texts["borrower_en"]
        row.staff_zh, row.staff_en = texts["staff_zh"], texts["staff_en"]
        row.tellable, row.params = tellable, [[k, v] for k, v in sorted(declared.items())]
        row.updated_by, row.updated_at = who.username, utcnow()
        s.flush()
        saved = ReasonCode.from_row(row)
        audit.record(s, who, "reason_code.update" if before else "reason_code.create", "reason_code", row.id,
                     before=before, after=saved.as_dict())
        uow.commit()
    return saved


def tenant_catalogue(uow: UnitOfWork, who: Principal) -> Catalogue:
    """The bank's catalogue, for lint."""
    who.require(Permission.VIEW_POLICIES)
    with uow:
        return catalogue(uow.session, who.tenant_id)
