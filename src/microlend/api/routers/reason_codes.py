"""The bank's reason-code catalogue over HTTP: list and read (anyone who may view policies), add or change a
code with its borrower and staff texts and parameters (a policy analyst; audited)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.decisioning import service as svc

router = api_router(prefix="/api/v1/reason-codes", tags=["policies"])


class ReasonCodePublic(PublicSchema):
    code: str
    borrower_zh: str
    borrower_en: str
    staff_zh: str
    staff_en: str
    tellable: bool
    params: dict[str, str] = Field(description="parameter name -> the input field whose bound, in the row that "
                                               "gave the reason, fills it in")
    updated_by: str


class ReasonCodeWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    borrower_zh: str = Field(min_length=1, max_length=500)
    borrower_en: str = Field(min_length=1, max_length=500)
    staff_zh: str = Field(min_length=1, max_length=500)
    staff_en: str = Field(min_length=1, max_length=500)
    tellable: bool
    params: dict[str, str] = Field(default_factory=dict, max_length=10,
                                   description="e.g. {\"max_age\": \"customer.age\"} for a text saying {max_age}")


def _public(r: svc.ReasonCode) -> ReasonCodePublic:
    return ReasonCodePublic(**r.as_dict())


@router.get("")
def list_reason_codes(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ReasonCodePublic]:
    """Every code in the bank's catalogue, by code."""
    return [_public(r) for r in svc.list_reason_codes(uow, who)]


@router.get("/{code}")
def get_reason_code(code: str, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReasonCodePublic:
    return _public(svc.get_reason_code(uow, who, code))


class ReasonCodeCreate(ReasonCodeWrite):
    code: str = Field(min_length=2, max_length=60, pattern=r"^[A-Z][A-Z0-9_]+$")


@router.post("", status_code=201)
def create_reason_code(body: ReasonCodeCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReasonCodePublic:
    """Add a code to the bank's catalogue (409 if it is there already)."""
    return _public(svc.save_reason_code(uow, who, body.code, borrower_zh=body.borrower_zh,
                                        borrower_en=body.borrower_en, staff_zh=body.staff_zh,
                                        staff_en=body.staff_en, tellable=body.tellable, params=body.params,
                                        create=True))


@router.put("/{code}")
def put_reason_code(code: str, body: ReasonCodeWrite, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReasonCodePublic:
    """Change a code's texts (every text given; a `{name}` in a text must be a declared parameter)."""
    return _public(svc.save_reason_code(uow, who, code, borrower_zh=body.borrower_zh, borrower_en=body.borrower_en,
                                        staff_zh=body.staff_zh, staff_en=body.staff_en, tellable=body.tellable,
                                        params=body.params, create=False))
