"""Regulatory and finance reports (监管与财务报表): the five-category table by product and branch, NPL formation
and disposal, provision movement and the interest income reconciliation; JSON, or an Excel workbook with
``format=xlsx``. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Query, Response

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.servicing import reports

router = api_router(prefix="/api/v1/reports", tags=["servicing"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Format = Annotated[Literal["json", "xlsx"], Query(description="json (default) or xlsx (an Excel workbook)")]
From = Annotated[date | None, Query(alias="from", description="first business date (default: the first of the month)")]
To = Annotated[date | None, Query(alias="to", description="last business date (default: the last one closed)")]


#: what a report route answers: its JSON, or with format=xlsx the workbook
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The report (JSON), or its Excel workbook with format=xlsx",
          "content": {"application/json": {"schema": {"type": "object"}},
                      XLSX: {"schema": {"type": "string", "format": "binary"}}}},
}


def _answer(name: str, report: dict[str, Any], fmt: str) -> Any:
    if fmt != "xlsx":
        return report
    body = reports.to_xlsx(name, reports.sheets(name, report))
    stamp = report.get("as_of") or f"{report['from']}_{report['to']}"
    return Response(body, media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.xlsx"'})


@router.get("/five-category", responses=ANSWERS)
def five_category(who: CurrentPrincipal, uow: UnitOfWorkDep,
                  on: Annotated[date | None, Query(alias="date")] = None, format: Format = "json") -> Any:
    """贷款五级分类 count and balance per class, in total, by product and by branch; NPL balance and ratio."""
    return _answer("five-category", reports.five_category(uow, who, on), format)


@router.get("/npl-movement", responses=ANSWERS)
def npl_movement(who: CurrentPrincipal, uow: UnitOfWorkDep, start: From = None, end: To = None,
                 format: Format = "json") -> Any:
    """不良贷款生成与处置: opening, new NPL, cures, collections, write-offs, closing."""
    return _answer("npl-movement", reports.npl_movement(uow, who, start, end), format)


@router.get("/provision-movement", responses=ANSWERS)
def provision_movement(who: CurrentPrincipal, uow: UnitOfWorkDep, start: From = None, end: To = None,
                       format: Format = "json") -> Any:
    """贷款损失准备变动: opening, charge, write-offs, recoveries, releases, closing (the allowance account)."""
    return _answer("provision-movement", reports.provision_movement(uow, who, start, end), format)


@router.get("/interest-income", responses=ANSWERS)
def interest_income(who: CurrentPrincipal, uow: UnitOfWorkDep, start: From = None, end: To = None,
                    format: Format = "json") -> Any:
    """利息收入核对: accrued, reversed on non-accrual, cash-basis recognised, and the off-balance memo accounts."""
    return _answer("interest-income", reports.interest_income(uow, who, start, end), format)
