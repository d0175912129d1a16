"""Collections API (催收): the queue of cases, a case with its actions, contacts under the conduct rules (a
forbidden contact is refused 409 with the rule's name), promises to pay, notes, assignment, escalation, closure,
and the bank's strategy and conduct rules (read by collectors, changed by an administrator, on the audit trail).
Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import File, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, Limit, Offset, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.api.schemas import MoneyStr, PublicSchema
from microlend.servicing import collection_rules as rules
from microlend.servicing.service import collecting

router = api_router(prefix="/api/v1/collections", tags=["collections"])


class CasePublic(PublicSchema):
    id: int
    loan_id: int
    customer_id: int | None
    branch: str
    status: str = Field(description="open | closed")
    bucket: str = Field(description="M1, M2, M3, ...")
    days_past_due: int
    amount_overdue: MoneyStr
    queue: str
    next_action: str
    assignee: str | None
    escalation: int
    registered_contacts: list[str]
    opened_on: date
    closed_on: date | None
    close_reason: str | None


class CasePage(BaseModel):
    items: list[CasePublic]
    total: int


class ActionPublic(PublicSchema):
    id: int
    case_id: int
    kind: str = Field(description="contact | blocked | promise | note | escalation | assign | close")
    channel: str | None
    party: str | None
    outcome: str | None
    template: str | None
    rule: str | None = Field(description="the conduct rule that refused a blocked contact")
    amount: MoneyStr | None
    promise_date: date | None
    promise_status: str | None = Field(description="pending | kept | broken | closed")
    text: str
    actor: str
    at: datetime


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, the bank's time")]
Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_+:-]+$")]


class RouteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: Literal["M1", "M2", "M3+"]
    queue: Name
    actions: list[Name] = Field(min_length=1, max_length=6, description="the strategy's actions, first one next")
    large_amount: Decimal = Field(default=Decimal(0), ge=0, le=Decimal("100000000"), decimal_places=2,
                                  description="cases at or above this amount overdue go to large_queue (0: never)")
    large_queue: str = Field(default="", max_length=40)


class TemplateTexts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zh: str = Field(min_length=1, max_length=rules.MAX_TEMPLATE)
    en: str = Field(min_length=1, max_length=rules.MAX_TEMPLATE)


class SettingsBody(BaseModel):
    """The bank's collections strategy (bucket -> queue and actions) and conduct rules (allowed hours, contacts
    per day, the approved respectful templates of written messages; fields {days}, {amount}, {date})."""

    model_config = ConfigDict(extra="forbid")

    routes: list[RouteBody] = Field(min_length=3, max_length=3)
    allowed_start: HHMM
    allowed_end: HHMM
    timezone: str = Field(default="Asia/Shanghai", min_length=1, max_length=60)
    max_contacts_per_day: int = Field(ge=1, le=10)
    templates: dict[Name, TemplateTexts] = Field(min_length=1, max_length=20)
    branch_queues: dict[Annotated[str, Field(max_length=100)], Name] = Field(default_factory=dict, max_length=100)

    def to_settings(self) -> rules.CollectionSettings:
        return rules.CollectionSettings(
            routes=tuple(rules.Route(r.bucket, r.queue, tuple(r.actions), r.large_amount, r.large_queue)
                         for r in self.routes),
            allowed_start=time.fromisoformat(self.allowed_start), allowed_end=time.fromisoformat(self.allowed_end),
            timezone=self.timezone, max_contacts_per_day=self.max_contacts_per_day,
            templates={k: {"zh": v.zh, "en": v.en} for k, v in self.templates.items()},
            branch_queues=dict(self.branch_queues))

    @classmethod
    def of(cls, s: rules.CollectionSettings) -> SettingsBody:
        return cls(routes=[RouteBody(bucket=r.bucket, queue=r.queue, actions=list(r.actions),
                                     large_amount=r.large_amount, large_queue=r.large_queue) for r in s.routes],
                   allowed_start=s.allowed_start.strftime("%H:%M"), allowed_end=s.allowed_end.strftime("%H:%M"),
                   timezone=s.timezone, max_contacts_per_day=s.max_contacts_per_day,
                   templates={k: TemplateTexts(zh=v.get("zh", ""), en=v.get("en", "")) for k, v in s.templates.items()},
                   branch_queues=dict(s.branch_queues))


class AttachmentPublic(PublicSchema):
    id: int
    case_id: int
    filename: str
    content_type: str = Field(description="image/jpeg | image/png | application/pdf")
    size: int
    sha256: str
    uploaded_by: str
    at: datetime


class CaseDetailPublic(BaseModel):
    case: CasePublic
    actions: list[ActionPublic]


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["call", "sms", "visit", "letter"]
    party: str = Field(min_length=1, max_length=100, description="'borrower' or a registered contact's name")
    outcome: Literal["promise", "refused", "no_answer", "wrong_number"]
    template: str | None = Field(default=None, max_length=40, description="the approved template of a message")
    note: str = Field(default="", max_length=2000)


class PromiseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(min_length=1, max_length=30, description="a decimal string, e.g. '1500.00'")
    promise_date: date
    note: str = Field(default="", max_length=2000)


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str = Field(min_length=1, max_length=100)


class ReasonText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["cured", "written_off"]


def _detail(detail: collecting.CaseDetail) -> CaseDetailPublic:
    return CaseDetailPublic(case=CasePublic.model_validate(detail.case),
                            actions=[ActionPublic.model_validate(a) for a in detail.actions])


@router.get("/cases")
def list_cases(
    who: CurrentPrincipal, uow: UnitOfWorkDep, limit: Limit = 50, offset: Offset = 0,
    status: Literal["open", "closed"] = Query(default="open"),
    queue: str | None = Query(default=None, max_length=60),
    assignee: str | None = Query(default=None, max_length=100),
    mine: bool = Query(default=False, description="only the cases assigned to the caller"),
    bucket: str | None = Query(default=None, max_length=10),
    unassigned: bool = Query(default=False, description="only the cases nobody has taken"),
    after: int | None = Query(default=None, ge=0, le=2**31 - 1, description="the page after this case id"),
) -> CasePage:
    """The collections queue: open cases with the loan, bucket, amount overdue, assignee and next action."""
    rows = collecting.list_cases(uow, who, status=status, queue=queue, assignee=who.username if mine else assignee,
                                 bucket=bucket, unassigned=unassigned, after=after, limit=limit, offset=offset)
    return CasePage(items=[CasePublic.model_validate(r) for r in rows],
                    total=collecting.count_cases(uow, who, status=status))


@router.get("/cases/{case_id}")
def get_case(case_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CaseDetailPublic:
    return _detail(collecting.get_case(uow, who, case_id))


@router.post("/cases/{case_id}/contacts", status_code=201)
def log_contact(case_id: Id, body: ContactCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ActionPublic:
    """Log a contact; refused 409 with the conduct rule's name (allowed_hours, daily_limit, allowed_party,
    template) when a rule forbids it — the refused attempt is recorded too."""
    return ActionPublic.model_validate(collecting.log_contact(
        uow, who, case_id, channel=body.channel, party=body.party, outcome=body.outcome, template=body.template,
        note=body.note))


@router.post("/cases/{case_id}/promises", status_code=201)
def record_promise(case_id: Id, body: PromiseCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ActionPublic:
    """A promise to pay an amount by a date; kept or broken is decided at a close of business."""
    return ActionPublic.model_validate(collecting.record_promise(
        uow, who, case_id, amount=body.amount, promise_date=body.promise_date, note=body.note))


@router.post("/cases/{case_id}/notes", status_code=201)
def add_note(case_id: Id, body: NoteCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ActionPublic:
    return ActionPublic.model_validate(collecting.add_note(uow, who, case_id, body.text))


@router.post("/cases/{case_id}/assign")
def assign(case_id: Id, body: AssignBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CasePublic:
    return CasePublic.model_validate(collecting.assign(uow, who, case_id, body.assignee))


@router.post("/cases/{case_id}/escalate")
def escalate(case_id: Id, body: ReasonText, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CasePublic:
    return CasePublic.model_validate(collecting.escalate(uow, who, case_id, body.reason))


@router.post("/cases/{case_id}/close")
def close(case_id: Id, body: CloseBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CasePublic:
    """Close on cure (the loan is current or repaid) or write-off (the loan is written off)."""
    return CasePublic.model_validate(collecting.close_case(uow, who, case_id, body.reason))


@router.get("/settings")
def get_settings(who: CurrentPrincipal, uow: UnitOfWorkDep) -> SettingsBody:
    """The bank's strategy and conduct rules (the defaults until an administrator sets them)."""
    return SettingsBody.of(collecting.collection_settings(uow, who))


@router.put("/settings")
def put_settings(body: SettingsBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SettingsBody:
    """Change the strategy and conduct rules (an administrator); the change is audited with before and after.
    Refused 422: a bucket group without its route, hours outside 07:00-22:00, a template that is not respectful."""
    return SettingsBody.of(collecting.save_settings(uow, who, body.to_settings()))


@router.post("/cases/{case_id}/attachments", status_code=201)
def add_attachment(case_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
                   file: Annotated[UploadFile, File(description="a JPEG or PNG photo or a PDF, at most 5 MB")]
                   ) -> AttachmentPublic:
    """Attach a photo or PDF to an open case (recognised by its content; 422 for another type or a larger file)."""
    content = file.file.read(collecting.MAX_ATTACHMENT_BYTES + 1)
    return AttachmentPublic.of(collecting.add_attachment(uow, who, case_id, filename=file.filename or "",
                                                         content=content))


@router.get("/cases/{case_id}/attachments")
def list_attachments(case_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[AttachmentPublic]:
    return [AttachmentPublic.of(a) for a in collecting.list_attachments(uow, who, case_id)]


@router.get("/attachments/{attachment_id}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "application/pdf": {}}}})
def download_attachment(attachment_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    """An attachment's bytes, as a download (never shown inline), to staff of the case's bank only."""
    view, content = collecting.attachment_content(uow, who, attachment_id)
    return attachment_response(view, content)


def attachment_response(view: collecting.AttachmentView, content: bytes) -> Response:
    return Response(content, media_type=view.content_type, headers={
        "Content-Disposition": f"attachment; filename=\"attachment-{view.id}\"; "
                               f"filename*=UTF-8''{quote(view.filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
