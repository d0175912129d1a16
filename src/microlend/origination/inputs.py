"""What the policy sees of an application: the borrower, the credit report (only with the borrower's
authorisation), the borrower's own record at this bank, the obligor group's exposure and repayment capacity."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from microlend.core import metrics
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.domain import (
    ApplicationFacts,
    CapacityFacts,
    CustomerFacts,
    DataFacts,
    DecisionInput,
    ModelResult,
)
from microlend.origination import exposure as exposures
from microlend.origination.applications import Status
from microlend.origination.bureau import BureauReport, CreditBureau, ProfileBureau
from microlend.origination.business_data import BusinessData
from microlend.origination.tables import ApplicationRow
from microlend.parties.queries import CustomerView
from microlend.servicing import queries as loan_queries

_bureau: CreditBureau = ProfileBureau()


def set_bureau(bureau: CreditBureau) -> None:
    """Connect the bank's credit bureau (the default answers from stored credit profiles)."""
    global _bureau
    _bureau = bureau


def bureau_report(customer_kind: str, attributes: dict[str, Any]) -> BureauReport:
    """The credit report the bank's bureau gives a decision about a customer with these stored attributes (for
    batch work over the whole base, e.g. pre-approval; a decision calls the bureau itself)."""
    return _bureau.report(customer_kind, attributes)


def age_on(birth: date | None, on: date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def add_months(on: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter)."""
    month = on.month - 1 + months
    year, month = on.year + month // 12, month % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30,
            31, 30, 31][month - 1]
    return date(year, month, min(on.day, last))


def _decimal_attr(attributes: dict[str, Any], key: str) -> Decimal | None:
    value = attributes.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return None
    return result if result.is_finite() else None


def _date_attr(attributes: dict[str, Any], key: str) -> date | None:
    value = attributes.get(key)
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def scoring_case(customer: CustomerView) -> dict[str, Any]:
    """The scorecard's view of an applicant: the stored credit profile. The model scores the borrower; the
    amount asked for is the policy's business (limit matrix, authority), in the bank's own currency."""
    return dict(customer.attributes)


def _internal_features(uow: UnitOfWork, who: Principal, customer_id: int) -> dict[str, float | None]:
    """Behaviour at this bank (行内表现): loans, days past due now, previous applications and declines."""
    loans = loan_queries.customer_loans(uow, who, customer_id)
    declined = case((ApplicationRow.status == Status.DECLINED.value, 1), else_=0)
    apps = uow.session.execute(select(func.count(), func.sum(declined)).where(
        ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.customer_id == customer_id)).one()
    return {"loans_count": float(loans.loans_count), "active_loans": float(loans.active_loans),
            "current_dpd": float(loans.max_days_past_due), "previous_applications": float(apps[0] or 0),
            "previous_declines": float(apps[1] or 0)}


def _bureau_features(report: BureauReport | None) -> dict[str, float | None]:
    if report is None or not report.present:
        return {}
    out: dict[str, float | None] = {}
    if report.credit_history_months is not None:
        out["credit_history_months"] = float(report.credit_history_months)
    if report.lenders_with_open_credit is not None:
        out["bureau_lenders_open"] = float(report.lenders_with_open_credit)
    if report.inquiries_3m is not None:
        out["bureau_inquiries_3m"] = float(report.inquiries_3m)
    return out


def capacity(customer: CustomerView, term_months: int, on: date, consents: set[str],
             settings: exposures.CreditSettings, min_amount: Decimal | None = None,
             verified_sales: Decimal | None = None) -> CapacityFacts:
    """Capacity and eligibility facts: verified turnover (核实营业额: the sales declared to the tax bureau in the
    last 12 months when the tax source answered), the bank's ceilings, age on the last due date (the owner's
    for a business), whether the ID document (身份证件) has expired, consent to the report."""
    attrs = dict(customer.attributes)
    maturity = add_months(on, term_months)
    age_at_maturity = age_on(customer.birth_date, maturity)
    if age_at_maturity is None:
        age_at_maturity = age_on(_date_attr(attrs, "owner_birth_date"), maturity)
    if age_at_maturity is None and attrs.get("owner_age") is not None:
        age_at_maturity = int(attrs["owner_age"]) + (term_months + 11) // 12
    expiry = _date_attr(attrs, "id_expiry_date")
    return CapacityFacts(
        borrower_kind=customer.kind,
        verified_turnover=verified_sales if verified_sales is not None else _decimal_attr(
            attrs, "verified_annual_turnover"),
        turnover_multiple=settings.turnover_multiple, debt_to_income_ceiling=settings.debt_to_income_ceiling,
        age_at_maturity=age_at_maturity, id_document_expired=None if expiry is None else expiry < on,
        credit_report_consent="credit_report" in consents, product_min_amount=min_amount,
        tax_loan_fraction=settings.tax_loan_fraction,
        verified_sales_12m=verified_sales if verified_sales is not None else _decimal_attr(attrs, "tax_sales_12m"))


def _gateway_report(data: BusinessData) -> BureauReport | None:
    """The credit report as the bureau provider gave it through the gateway (None when it did not answer)."""
    if data.sources.get("bureau") not in ("ok", "not_found"):
        return None
    f = data.features
    if data.sources["bureau"] == "not_found" or f.get("bur_history_months") is None:
        return BureauReport(present=False)

    def count(name: str) -> int | None:
        value = f.get(name)
        return None if value is None else int(value)

    return BureauReport(
        present=True, credit_history_months=count("bur_history_months"),
        overdue_elsewhere=(f.get("bur_overdue_now") or 0) > 0, blacklisted=(f.get("bur_bad_debt") or 0) > 0,
        lenders_with_open_credit=count("bur_lenders_open"), inquiries_3m=count("bur_inquiries_3m"))


def decision_input(uow: UnitOfWork, who: Principal, customer: CustomerView, app: Any, application_id: int,
                   on: date, consents: set[str], model: ModelResult,
                   min_amount: Decimal | None = None, data: BusinessData | None = None) -> DecisionInput:
    """Assemble what the policy sees for an application (`app`: a NewApplication) inside the submitting unit
    of work, after the obligor group's rows are locked: the business data the gateway gathered (`data`), the
    credit report only with authorisation (from the bureau provider, or the profile held with the customer
    when the bank has no bureau provider set up)."""
    attrs = dict(customer.attributes)
    data = data or BusinessData()
    report = _gateway_report(data) if "credit_report" in consents else None
    if report is None and "credit_report" in consents and data.sources.get("bureau") in (None, "not_configured"):
        with metrics.provider_call("credit_bureau"):
            report = _bureau.report(customer.kind, attrs)
    settings = exposures.credit_settings(uow, who)
    group = exposures.group_exposure(uow, who, customer.id, exclude_application=application_id, settings=settings)
    own = exposures.own_record(uow, who, list(group.group), customer.id, on, exclude_application=application_id)
    features = {**data.features, **_internal_features(uow, who, customer.id), **own.features(),
                **_bureau_features(report)}
    age = age_on(customer.birth_date, on)
    if age is None:
        age = age_on(_date_attr(attrs, "owner_birth_date"), on)
    if age is None and attrs.get("owner_age") is not None:
        age = int(attrs["owner_age"])
    return DecisionInput(
        application=ApplicationFacts(amount=app.amount, term_months=app.term_months, product_code=app.product_code,
                                     purpose=app.purpose),
        customer=CustomerFacts(
            customer_id=str(customer.id), age=age, industry=customer.industry or None,
            years_in_business=_decimal_attr(attrs, "years_in_business"),
            annual_turnover=_decimal_attr(attrs, "annual_turnover"),
            annual_income=_decimal_attr(attrs, "annual_income"),
            blacklisted=bool(report.blacklisted) if report else bool(attrs.get("blacklisted", False)),
            overdue_elsewhere=bool(report.overdue_elsewhere) if report else False,
            bureau_data_present=bool(report and report.present),
        ),
        features=features,
        model=model,
        exposure=group.facts(),
        capacity=capacity(customer, app.term_months, on, consents, settings, min_amount, data.verified_sales_12m),
        data=DataFacts(sources=data.sources, unavailable=data.unavailable),
    )
