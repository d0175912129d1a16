"""授信敞口 exposure: everything the bank has committed to a borrower's obligor group (关联方) — principal
outstanding, undrawn credit-line limits, open offers and applications in review — against the bank's cap.

A decision reads it and reserves its headroom under a lock on one row per borrower of the group (`SELECT ...
FOR UPDATE` on PostgreSQL; SQLite serialises writers), so two applications arriving at once for one group never
both use the same headroom: the second waits, then sees the first one's offer or review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import queries as decisions
from microlend.decisioning.domain import ExposureFacts
from microlend.origination.applications import Status
from microlend.origination.tables import ApplicationRow, CreditSettingsRow, ExposureLockRow
from microlend.parties import queries as parties
from microlend.servicing import queries as loans


class AboveAvailable(ValidationError):
    """An amount above what the obligor group's exposure cap leaves available (422, field `amount`)."""

    def __init__(self, amount: Decimal, group: Exposure) -> None:
        assert group.cap is not None and group.available is not None
        self.amount, self.available, self.currency = amount, group.available, group.currency
        super().__init__(
            f"amount: {amount:,.2f} is above what the exposure cap leaves available to the borrower's group: "
            f"{group.available:,.2f} {group.currency} (cap {group.cap:,.2f}, exposure {group.total:,.2f})",
            field="amount")


@dataclass(frozen=True)
class CreditSettings:
    """The bank's lending limits: the most one obligor group may owe and be offered (None: only the policy's
    caps by grade), a business's limit as a multiple of its annual turnover, a person's debt-to-income ceiling,
    and a tax-data loan's (税贷) limit as a share of the business's declared sales over 12 months."""

    borrower_exposure_cap: Decimal | None
    turnover_multiple: Decimal
    debt_to_income_ceiling: Decimal
    updated_by: str = "system"
    updated_at: datetime | None = None
    tax_loan_fraction: Decimal = Decimal("0.3")


#: What a new bank lends under until it sets its own (单户授信上限 1,000,000 CNY; half a year's turnover;
#: debt up to twice a year's income; a tax-data loan up to 30 % of a year's declared sales).
DEFAULTS = CreditSettings(Decimal("1000000"), Decimal("0.5"), Decimal("2"))
#: Own history counts over this many years (non-performing and written-off loans).
HISTORY_YEARS = 5
#: Applications counted for velocity over this many days.
VELOCITY_DAYS = 30
_OFFERED = (Status.APPROVED.value, Status.ACCEPTED.value)
_IN_REVIEW = (Status.SUBMITTED.value, Status.REFERRED.value, Status.RECOMMENDED.value)


def credit_settings(uow: UnitOfWork, who: Principal) -> CreditSettings:
    with uow:
        row = uow.session.get(CreditSettingsRow, who.tenant_id)
    if row is None:
        return DEFAULTS
    return CreditSettings(row.borrower_exposure_cap, row.turnover_multiple, row.debt_to_income_ceiling,
                          row.updated_by, row.updated_at, row.tax_loan_fraction)


def read_credit_settings(uow: UnitOfWork, who: Principal) -> CreditSettings:
    """The bank's lending limits, for staff who read its credit policies."""
    who.require(Permission.VIEW_POLICIES)
    return credit_settings(uow, who)


def update_credit_settings(uow: UnitOfWork, who: Principal, settings: CreditSettings) -> CreditSettings:
    """Set the bank's lending limits; they apply to every decision from now on (audited)."""
    who.require(Permission.PUBLISH_POLICIES)
    cap = settings.borrower_exposure_cap
    if cap is not None and (not cap.is_finite() or cap <= 0):
        raise ValidationError("borrower_exposure_cap: must be a positive amount (or null for none)",
                              field="borrower_exposure_cap")
    for field, value in (("turnover_multiple", settings.turnover_multiple),
                         ("debt_to_income_ceiling", settings.debt_to_income_ceiling)):
        if not value.is_finite() or not Decimal(0) < value <= Decimal(100):
            raise ValidationError(f"{field}: must be above 0 and at most 100", field=field)
    fraction = settings.tax_loan_fraction
    if not fraction.is_finite() or not Decimal(0) < fraction <= Decimal(1):
        raise ValidationError("tax_loan_fraction: must be above 0 and at most 1 (a share of declared sales)",
                              field="tax_loan_fraction")
    with uow:
        s = uow.session
        row = s.get(CreditSettingsRow, who.tenant_id)
        before = None if row is None else _audit_view(row)
        if row is None:
            row = CreditSettingsRow(tenant_id=who.tenant_id)
            s.add(row)
        row.borrower_exposure_cap, row.turnover_multiple = cap, settings.turnover_multiple
        row.debt_to_income_ceiling, row.updated_at, row.updated_by = (settings.debt_to_income_ceiling, utcnow(),
                                                                        who.username)
        row.tax_loan_fraction = fraction
        s.flush()
        audit.record(s, who, "credit_settings.update", "credit_settings", who.tenant_id, before=before,
                     after=_audit_view(row))
        uow.commit()
    return credit_settings(uow, who)


def _audit_view(row: CreditSettingsRow) -> dict[str, str | None]:
    cap = row.borrower_exposure_cap
    return {"borrower_exposure_cap": None if cap is None else str(cap),
            "turnover_multiple": str(row.turnover_multiple), "debt_to_income_ceiling": str(row.debt_to_income_ceiling),
            "tax_loan_fraction": str(row.tax_loan_fraction)}


@dataclass(frozen=True)
class Figures:
    outstanding: Decimal
    undrawn: Decimal
    offers: Decimal
    in_review: Decimal

    @property
    def total(self) -> Decimal:
        return self.outstanding + self.undrawn + self.offers + self.in_review


@dataclass(frozen=True)
class Exposure:
    """The obligor group's exposure (the borrower's own figures in `borrower`), its cap and what is left."""

    customer_id: int
    group: tuple[int, ...]
    group_figures: Figures
    borrower: Figures
    cap: Decimal | None  # the bank's cap and the grade's of the customer's latest decision, the lower
    bank_cap: Decimal | None = None  # the bank's own per-borrower cap
    currency: str = "CNY"

    @property
    def total(self) -> Decimal:
        return self.group_figures.total

    @property
    def available(self) -> Decimal | None:
        return None if self.cap is None else max(self.cap - self.total, Decimal(0))

    def facts(self) -> ExposureFacts:
        """What the policy sees: the group's exposure before this application and the bank's cap (the policy
        applies the cap of the grade it decides now, not an earlier decision's)."""
        g = self.group_figures
        return ExposureFacts(outstanding=g.outstanding, undrawn=g.undrawn, offers=g.offers, in_review=g.in_review,
                             total=g.total, cap=self.bank_cap)


def lock_borrowers(s: Session, tenant_id: int, customer_ids: list[int]) -> None:
    """Take the per-borrower rows of a group, in id order (no two groups wait for each other in a cycle), until
    the transaction ends; a borrower's row is created on first use."""
    ids = sorted(set(customer_ids))
    values = [{"tenant_id": tenant_id, "customer_id": i} for i in ids]
    upsert = pg_insert(ExposureLockRow) if s.get_bind().dialect.name == "postgresql" else sqlite_insert(ExposureLockRow)
    s.execute(upsert.values(values).on_conflict_do_nothing(index_elements=["tenant_id", "customer_id"]))
    s.execute(select(ExposureLockRow.customer_id).where(
        ExposureLockRow.tenant_id == tenant_id, ExposureLockRow.customer_id.in_(ids))
        .order_by(ExposureLockRow.customer_id).with_for_update()).all()


def _applications(s: Session, tenant_id: int, ids: list[int], now: datetime,
                  exclude: int | None) -> dict[int, tuple[Decimal, Decimal]]:
    """Customer id -> (open offers, applications in review), leaving out one application (the one deciding)."""
    rows = s.execute(select(ApplicationRow.customer_id, ApplicationRow.status, ApplicationRow.amount,
                            ApplicationRow.recommended_amount, ApplicationRow.recommendation,
                            ApplicationRow.offer_amount, ApplicationRow.offer_expires_at).where(
        ApplicationRow.tenant_id == tenant_id, ApplicationRow.customer_id.in_(ids),
        ApplicationRow.status.in_(_OFFERED + _IN_REVIEW), ApplicationRow.id != (exclude or 0))).all()
    out: dict[int, tuple[Decimal, Decimal]] = {}
    for customer, status, amount, recommended, recommendation, offer, expires in rows:
        offers, review = out.get(int(customer), (Decimal(0), Decimal(0)))
        if status in _OFFERED:
            if offer is not None and (status != Status.APPROVED or expires is None or expires >= now):
                offers += offer
        elif recommendation == "approve" and recommended is not None:
            review += recommended
        else:
            review += amount
        out[int(customer)] = (offers, review)
    return out


def group_exposure(uow: UnitOfWork, who: Principal, customer_id: int, *, exclude_application: int | None = None,
                   settings: CreditSettings | None = None) -> Exposure:
    """The exposure of the customer's obligor group now (inside the caller's unit of work when one is open)."""
    settings = settings or credit_settings(uow, who)
    with uow:
        group = parties.obligor_group(uow, who, customer_id)
        lent = loans.loan_exposure(uow, who, group)
        applied = _applications(uow.session, who.tenant_id, group, utcnow(), exclude_application)
        grade_cap = decisions.latest_exposure_cap(uow, who, customer_id)
    per = {c: Figures(lent[c].outstanding, lent[c].undrawn, *applied.get(c, (Decimal(0), Decimal(0))))
           for c in group}
    total = Figures(*(sum((getattr(f, k) for f in per.values()), Decimal(0))
                      for k in ("outstanding", "undrawn", "offers", "in_review")))
    caps = [c for c in (settings.borrower_exposure_cap, grade_cap) if c is not None]
    return Exposure(customer_id, tuple(group), total, per[customer_id], min(caps) if caps else None,
                    settings.borrower_exposure_cap)


def exposure(uow: UnitOfWork, who: Principal, customer_id: int) -> Exposure:
    """A customer's exposure, for staff (it counts the related parties' figures too)."""
    who.require(Permission.VIEW_CUSTOMERS)
    with uow.read_only():
        parties.customer(uow, who, customer_id)  # NotFound for another bank's customer
        return group_exposure(uow, who, customer_id)


@dataclass(frozen=True)
class OwnRecord:
    """The features of the borrower's own record the policy reads (行内记录)."""

    days_past_due: int
    npl_loans: int
    written_off: int
    applications_30d: int
    pending_offers: int

    def features(self) -> dict[str, float | None]:
        return {"own_days_past_due": float(self.days_past_due), "own_npl_loans": float(self.npl_loans),
                "own_written_off": float(self.written_off), "applications_30d": float(self.applications_30d),
                "pending_offers": float(self.pending_offers)}


def own_record(uow: UnitOfWork, who: Principal, group: list[int], customer_id: int, on: date,
               exclude_application: int | None = None) -> OwnRecord:
    """Arrears, non-performing and written-off loans of the obligor group; the borrower's applications in the
    last 30 days and offers still open."""
    now = utcnow()
    since = on.replace(year=on.year - HISTORY_YEARS) if (on.month, on.day) != (2, 29) else on - timedelta(
        days=365 * HISTORY_YEARS)
    history = loans.credit_history(uow, who, group, since)
    with uow:
        s = uow.session
        mine = (ApplicationRow.tenant_id == who.tenant_id) & (ApplicationRow.customer_id == customer_id) & (
            ApplicationRow.id != (exclude_application or 0))
        recent = s.execute(select(func.count()).select_from(ApplicationRow).where(
            mine, ApplicationRow.submitted_at >= now - timedelta(days=VELOCITY_DAYS))).scalar_one()
        offers = s.execute(select(func.count()).select_from(ApplicationRow).where(
            mine, ApplicationRow.status == Status.APPROVED.value, ApplicationRow.offer_expires_at >= now)).scalar_one()
    return OwnRecord(history.days_past_due, history.non_performing, history.written_off, int(recent or 0),
                     int(offers or 0))
