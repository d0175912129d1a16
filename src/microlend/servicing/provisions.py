"""Provisions (拨备): expected credit loss in three stages, a set-based provisioning run that posts only the
change of the loan-loss allowance, and the portfolio report (five categories, NPL ratio, coverage).

Stages: 1 performing (12-month ECL); 2 significant increase in credit risk, more than 30 days past due or
classified special mention 关注 (lifetime ECL); 3 credit-impaired, non-performing 次级/可疑/损失 (lifetime
ECL). A loan's provision is EAD × PD(stage) × LGD, rounded half-up to the cent, where EAD is its outstanding
principal plus the interest and penalty receivable still on the balance sheet. PD per stage and LGD are the
bank's parameters (defaults: 2 %, 20 %, 100 %; LGD 45 %, unsecured). A run stores every active loan's row and
posts Dr credit-impairment loss 6702 / Cr loan-loss allowance 1304 for the increase (the reverse for a
release), so the allowance always equals the latest run's total."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import Amount
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import from_storage
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.servicing.accrued import accrued_sql, closed_through
from microlend.servicing.delinquency import LoanClass
from microlend.servicing.ledger import Acct, JournalEntry, credit, debit
from microlend.servicing.products import DEFAULT_RATE_CAP
from microlend.servicing.repository import create_temporary_as, post_entry, tune_batch_transaction
from microlend.servicing.tables import (
    JournalLineRow,
    LoanProvisionRow,
    ProvisionRunRow,
    RepaymentRow,
    ServicingSettingsRow,
    WriteOffRow,
)

ZERO = Decimal(0)
_FACTOR_SCALE = 10**8  # PD × LGD as an exact integer × 10^8 for set-based SQL
_NPL = ", ".join(f"'{c.value}'" for c in LoanClass if c.non_performing)


@dataclass(frozen=True)
class ProvisionParameters:
    """A bank's expected-credit-loss parameters; each a ratio between 0 and 1 with at most 8 decimals."""

    pd_stage1: Decimal = Decimal("0.02")
    pd_stage2: Decimal = Decimal("0.2")
    pd_stage3: Decimal = Decimal("1")
    lgd: Decimal = Decimal("0.45")

    def __post_init__(self) -> None:
        for name in ("pd_stage1", "pd_stage2", "pd_stage3", "lgd"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not ZERO <= value <= 1:
                raise ValidationError(f"{name}: a ratio between 0 and 1", field=name)
        if not self.pd_stage1 <= self.pd_stage2 <= self.pd_stage3:
            raise ValidationError("pd_stage2: stage PDs must not fall from stage 1 to 3", field="pd_stage2")

    def factor_e8(self, stage: int) -> int:
        """PD(stage) × LGD × 10^8, rounded half-up to an integer."""
        pd = (self.pd_stage1, self.pd_stage2, self.pd_stage3)[stage - 1]
        return int((pd * self.lgd * _FACTOR_SCALE).to_integral_value(rounding="ROUND_HALF_UP"))

    def facts(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in ("pd_stage1", "pd_stage2", "pd_stage3", "lgd")}


DEFAULT_PARAMETERS = ProvisionParameters()


def provision_for(ead: Decimal, stage: int, params: ProvisionParameters = DEFAULT_PARAMETERS) -> Decimal:
    """One loan's expected credit loss in cents, exactly as the set-based run computes it."""
    cents = int(ead * 100)
    doubled = 2 * cents * params.factor_e8(stage) + _FACTOR_SCALE
    return Decimal(doubled // (2 * _FACTOR_SCALE)) / 100


def stage_of(days_past_due: int, loan_class: str) -> int:
    if LoanClass(loan_class).non_performing:
        return 3
    return 2 if days_past_due > 30 or loan_class == LoanClass.SPECIAL_MENTION.value else 1


def bank_parameters(session: Session, tenant_id: int) -> ProvisionParameters:
    row = session.get(ServicingSettingsRow, tenant_id)
    if row is None:
        return DEFAULT_PARAMETERS
    return ProvisionParameters(row.pd_stage1, row.pd_stage2, row.pd_stage3, row.lgd)


@dataclass(frozen=True)
class ProvisionRun:
    id: int
    as_of: date
    loans: int
    total: Decimal
    change: Decimal
    by_stage: dict[str, Decimal]
    seconds: float


_STAGE = (
    f"CASE WHEN l.loan_class IN ({_NPL}) THEN 3 "
    f"WHEN l.days_past_due > 30 OR l.loan_class = '{LoanClass.SPECIAL_MENTION.value}' THEN 2 ELSE 1 END"
)
# exposure at default, in storage units: principal + interest and penalty receivable still on the books
_EAD = (
    "x.principal + CASE WHEN x.interest - l.interest_suspended > 0 THEN x.interest - l.interest_suspended ELSE 0 END"
    " + CASE WHEN l.penalty_accrued - l.penalty_paid - l.penalty_suspended > 0"
    " THEN l.penalty_accrued - l.penalty_paid - l.penalty_suspended ELSE 0 END"
)


#: PostgreSQL: a run's rows before they are copied into ``loan_provisions`` (a temporary table of the run's
#: connection, dropped once they are)
_ROWS_TABLE = "provision_rows"


def allowance_balance(session: Session, tenant_id: int) -> Decimal:
    """The loan-loss allowance account's balance (a credit balance, shown positive)."""
    d, c = session.execute(
        select(func.sum(JournalLineRow.debit, type_=Amount()), func.sum(JournalLineRow.credit, type_=Amount())).where(
            JournalLineRow.tenant_id == tenant_id, JournalLineRow.account_code == Acct.LOAN_LOSS_ALLOWANCE.value
        )
    ).one()
    return (c or ZERO) - (d or ZERO)


def provision_in(session: Session, who: Principal, on: date, *, accrued_through: int | None = None) -> ProvisionRun:
    """The run inside the caller's transaction: one INSERT … SELECT of every active loan's provision, one
    posting of the allowance's change. Interest receivable is accrued through ``accrued_through`` (an ordinal:
    the date a close of business is closing), by default the last closed date."""
    started = time.perf_counter()
    day = closed_through(session, who.tenant_id) if accrued_through is None else accrued_through
    params = bank_parameters(session, who.tenant_id)
    run = ProvisionRunRow(
        tenant_id=who.tenant_id,
        as_of=on,
        loans=0,
        total=ZERO,
        change=ZERO,
        parameters=params.facts(),
        created_by=who.username,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    factor = " ".join(f"WHEN {s} THEN {params.factor_e8(s)}" for s in (1, 2, 3))
    values = {"run": run.id, "t": who.tenant_id, "day": day}
    amount_sql = f"100 * ((2 * (y.ead / 100) * CASE y.stage {factor} END + {_FACTOR_SCALE}) / {2 * _FACTOR_SCALE})"
    rows_sql = (
        f"(SELECT l.id, l.loan_class, {_STAGE} AS stage, x.principal, {_EAD} AS ead "
        "FROM loans l JOIN (SELECT loan_id, CAST(SUM(principal - principal_paid) AS BIGINT) AS principal, "
        f"CAST(SUM({accrued_sql(':day')} - interest_paid) AS BIGINT) AS interest FROM loan_installments "
        "WHERE tenant_id = :t AND status IN ('pending', 'overdue') GROUP BY loan_id) x ON x.loan_id = l.id "
        "WHERE l.tenant_id = :t AND l.status = 'active') y"
    )
    insert = "INSERT INTO loan_provisions (run_id, loan_id, tenant_id, stage, loan_class, principal, ead, amount) "
    if session.get_bind().dialect.name == "postgresql":
        # the open installments aggregated with parallel workers (``create_temporary_as``): the loans' rows into a
        # temporary table first, then copied
        create_temporary_as(
            session,
            _ROWS_TABLE,
            f"SELECT y.id AS loan_id, y.stage, y.loan_class, y.principal, y.ead, {amount_sql} AS amount "
            f"FROM {rows_sql}",
            values,
        )
        # the stages' totals from the rows as the INSERT writes them (RETURNING into the same statement)
        totals = session.execute(
            text(
                f"WITH w AS ({insert}SELECT :run, loan_id, :t, stage, loan_class, principal, ead, amount "
                f"FROM {_ROWS_TABLE} RETURNING stage, amount) SELECT stage, SUM(amount), COUNT(*) FROM w "
                "GROUP BY stage"
            ),
            values,
        ).all()
        session.execute(text(f"DROP TABLE pg_temp.{_ROWS_TABLE}"))
    else:
        session.execute(
            text(
                f"{insert}SELECT :run, y.id, :t, y.stage, y.loan_class, y.principal, y.ead, {amount_sql} "
                f"FROM {rows_sql}"
            ),
            values,
        )
        totals = session.execute(
            text("SELECT stage, SUM(amount), COUNT(*) FROM loan_provisions WHERE run_id = :run GROUP BY stage"),
            {"run": run.id},
        ).all()
    stages: dict[str, Decimal] = {}
    count = 0
    for stage, amount, loans in totals:
        stages[str(stage)] = from_storage(int(amount or 0))
        count += int(loans)
    total = sum(stages.values(), ZERO)
    change = total - allowance_balance(session, who.tenant_id)
    if change:
        lines = (
            (debit(Acct.CREDIT_IMPAIRMENT_LOSS, change), credit(Acct.LOAN_LOSS_ALLOWANCE, change))
            if change > 0
            else (debit(Acct.LOAN_LOSS_ALLOWANCE, -change), credit(Acct.CREDIT_IMPAIRMENT_LOSS, -change))
        )
        entry = post_entry(
            session, who, on, JournalEntry("provision", lines, f"loan-loss allowance as of {on.isoformat()}")
        )
        run.journal_entry_id = entry.id
    run.loans, run.total, run.change = count, total, change
    session.flush()
    by_stage = {s: stages.get(s, ZERO) for s in ("1", "2", "3")}
    return ProvisionRun(run.id, on, count, total, change, by_stage, time.perf_counter() - started)


def run_provisioning(uow: UnitOfWork, who: Principal, on: date | None = None) -> ProvisionRun:
    """拨备计提 on demand: every active loan's expected credit loss as the portfolio stands now, booked on ``on``
    (default: the open business date; never a later one); posts only the change of the allowance."""
    who.require(Permission.RUN_CLOSE_OF_BUSINESS)
    with uow:
        s = uow.session
        tune_batch_transaction(s)
        tenant = s.execute(select(TenantRow).where(TenantRow.id == who.tenant_id).with_for_update()).scalar_one()
        if on is not None and on > tenant.business_date:
            raise ValidationError(f"date: {on} is after the open business date {tenant.business_date}", field="date")
        result = provision_in(s, who, on or tenant.business_date)
        audit.record(
            s,
            who,
            "provision.run",
            "provision_run",
            result.id,
            after={
                "as_of": result.as_of.isoformat(),
                "loans": result.loans,
                "total": str(result.total),
                "change": str(result.change),
                "seconds": round(result.seconds, 3),
            },
        )
        uow.commit()
    return result


def set_provision_parameters(uow: UnitOfWork, who: Principal, params: ProvisionParameters) -> ProvisionParameters:
    """Set the bank's PD per stage and LGD; the next run uses them."""
    who.require(Permission.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        before = bank_parameters(s, who.tenant_id)
        row = s.get(ServicingSettingsRow, who.tenant_id)
        if row is None:
            row = ServicingSettingsRow(
                tenant_id=who.tenant_id, rate_cap=DEFAULT_RATE_CAP, updated_by=who.username, updated_at=utcnow()
            )
            s.add(row)
        row.pd_stage1, row.pd_stage2, row.pd_stage3, row.lgd = (
            params.pd_stage1,
            params.pd_stage2,
            params.pd_stage3,
            params.lgd,
        )
        row.updated_by, row.updated_at = who.username, utcnow()
        s.flush()
        audit.record(
            s,
            who,
            "servicing.provision_parameters",
            "tenant",
            who.tenant_id,
            before=before.facts(),
            after=params.facts(),
        )
        uow.commit()
    return params


def _ratio(part: Decimal, whole: Decimal) -> str | None:
    return None if whole == 0 else str((part / whole).quantize(Decimal("0.0001"), rounding="ROUND_HALF_UP"))


def portfolio_report(uow: UnitOfWork, who: Principal, on: date | None = None) -> dict[str, Any]:
    """The portfolio by five categories with NPL ratio, provisions by stage, coverage (拨备覆盖率 = provisions /
    NPL) and loan provision ratio (贷款拨备率 = provisions / loans), from the latest run on or before ``on``; and
    what was written off and recovered up to that run's date."""
    who.require(Permission.VIEW_LEDGER)
    with uow:
        s = uow.session
        stmt = select(ProvisionRunRow).where(ProvisionRunRow.tenant_id == who.tenant_id)
        if on is not None:
            stmt = stmt.where(ProvisionRunRow.as_of <= on)
        run = s.execute(stmt.order_by(ProvisionRunRow.as_of.desc(), ProvisionRunRow.id.desc()).limit(1)).scalar()
        if run is None:
            raise NotFound("no provisioning run on or before that date: run one first")
        by_class = {c.value: ZERO for c in LoanClass}
        by_stage = {"1": ZERO, "2": ZERO, "3": ZERO}
        for klass, stage, principal, amount in s.execute(
            select(
                LoanProvisionRow.loan_class,
                LoanProvisionRow.stage,
                func.sum(LoanProvisionRow.principal, type_=Amount()),
                func.sum(LoanProvisionRow.amount, type_=Amount()),
            )
            .where(LoanProvisionRow.run_id == run.id)
            .group_by(LoanProvisionRow.loan_class, LoanProvisionRow.stage)
        ):
            by_class[klass] = by_class.get(klass, ZERO) + (principal or ZERO)
            by_stage[str(stage)] += amount or ZERO
        outstanding = sum(by_class.values(), ZERO)
        npl = sum((v for k, v in by_class.items() if LoanClass(k).non_performing), ZERO)
        total = sum(by_stage.values(), ZERO)
        bad = written_off_totals(s, who.tenant_id, run.as_of)
        return {
            "as_of": run.as_of.isoformat(),
            "run_id": run.id,
            "outstanding": str(outstanding),
            "by_class": {k: str(v) for k, v in by_class.items()},
            "npl_ratio": _ratio(npl, outstanding),
            "provision_total": str(total),
            "provision_by_stage": {k: str(v) for k, v in by_stage.items()},
            "provision_coverage": _ratio(total, npl),
            "loan_provision_ratio": _ratio(total, outstanding),
            # 核销 written off (charged off against the allowance) and recovered since, up to the run's date
            "written_off": str(bad["written_off"]),
            "written_off_principal": str(bad["written_off_principal"]),
            "written_off_loans": int(bad["written_off_loans"]),
            "recovered": str(bad["recovered"]),
        }


def written_off_totals(s: Session, tenant_id: int, on: date | None = None) -> dict[str, Decimal]:
    """What the bank has written off (charged off, of which principal) and recovered, up to ``on``."""
    stmt = select(WriteOffRow).where(WriteOffRow.tenant_id == tenant_id, WriteOffRow.status == "approved")
    if on is not None:
        stmt = stmt.where(WriteOffRow.written_off_on <= on)
    totals = {"written_off": ZERO, "written_off_principal": ZERO, "recovered": ZERO, "written_off_loans": ZERO}
    for r in s.execute(stmt).scalars():
        totals["written_off"] += r.charged
        totals["written_off_principal"] += r.principal
        totals["written_off_loans"] += 1
    recoveries = select(RepaymentRow.amount).where(
        RepaymentRow.tenant_id == tenant_id, RepaymentRow.kind == "recovery", RepaymentRow.status == "posted")
    if on is not None:
        recoveries = recoveries.where(RepaymentRow.value_date <= on)
    totals["recovered"] = sum(s.execute(recoveries).scalars(), ZERO)
    return totals


def month_end(on: date) -> bool:
    return (on.toordinal() + 1) == date(on.year + (on.month == 12), on.month % 12 + 1, 1).toordinal()


__all__ = [
    "DEFAULT_PARAMETERS",
    "ProvisionParameters",
    "ProvisionRun",
    "allowance_balance",
    "bank_parameters",
    "month_end",
    "portfolio_report",
    "provision_for",
    "provision_in",
    "run_provisioning",
    "set_provision_parameters",
    "stage_of",
    "written_off_totals",
]
