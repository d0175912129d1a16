"""Messages API (thin): the bank's SMS and push gateways (credentials masked), and the gateways' callbacks,
delivery receipts and customers' replies, signed with the bank's gateway secret instead of a user's token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep
from microlend.api.errors import PROBLEM, PROBLEM_SCHEMA
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.core import delivery
from microlend.core.clock import utcnow
from microlend.marketing import service
from microlend.parties import devices

router = api_router(prefix="/api/v1/messages", tags=["messages"])

Channel = Literal["sms", "push"]
SignatureHeader = Annotated[str, Header(alias="X-Signature", max_length=200,
                                        description="hex HMAC-SHA256 of 'timestamp.body' under the bank's secret")]
TimestampHeader = Annotated[str, Header(alias="X-Timestamp", max_length=20, description="Unix seconds")]


class GatewayUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=300, examples=["https://sms.example.com/v1"])
    api_key: str = Field(default="", max_length=500, description="empty keeps the stored key")
    secret: str = Field(default="", max_length=500, description="empty keeps the stored secret")
    batch_size: int = Field(default=100, ge=1, le=1000)
    timeout_s: float = Field(default=5.0, ge=0.1, le=60)
    throttle_per_s: int = Field(default=200, ge=1, le=100_000)


class GatewayPublic(PublicSchema):
    channel: str
    url: str
    api_key: str
    secret: str
    batch_size: int
    timeout_s: float
    throttle_per_s: int
    updated_by: str
    updated_at: datetime


class CallbackPublic(BaseModel):
    recorded: int
    unknown: int
    opted_out: bool


#: a callback refused: its signature is not the bank's, is too old, or it names no message of a bank
_REFUSED: dict[int | str, dict[str, Any]] = {401: {
    "description": "The signature is not valid for the bank of the messages named (or they name none)",
    "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}}
_RECEIPTS_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["receipts"], "properties": {"receipts": {
        "type": "array", "minItems": 1, "maxItems": 1000, "items": {
            "type": "object", "required": ["id", "status"], "properties": {
                "id": {"type": "string", "maxLength": 40}, "status": {"enum": list(service.RECEIPT_STATUSES)},
                "at": {"type": "string", "format": "date-time"},
                "reason": {"type": "string", "maxLength": 100,
                           "description": "why not delivered; 'invalid_token' disables the push device"}}}}}}}}}}
_REPLY_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["id", "text"], "properties": {
        "id": {"type": "string", "maxLength": 40}, "text": {"type": "string", "maxLength": 1000}}}}}}}


@router.get("/gateways")
def list_gateways(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[GatewayPublic]:
    """The bank's gateways; API keys and secrets masked."""
    return [GatewayPublic.of(g) for g in delivery.list_gateways(uow, who)]


@router.put("/gateways/{channel}")
def set_gateway(channel: Channel, body: GatewayUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> GatewayPublic:
    config = delivery.GatewayConfig(channel, body.url, body.api_key, body.secret, body.batch_size, body.timeout_s,
                                    body.throttle_per_s)
    return GatewayPublic.of(delivery.save_gateway(uow, who, config, at=utcnow(), keep_credentials=True))


@router.post("/receipts", openapi_extra=_RECEIPTS_BODY, responses=_REFUSED)
async def receipts(request: Request, uow: UnitOfWorkDep, signature: SignatureHeader,
                   timestamp: TimestampHeader) -> CallbackPublic:
    """Delivery receipts from a gateway: the bank is the one of the messages named, the signature its."""
    body = await request.body()
    result = await run_in_threadpool(service.record_receipts, uow, body, timestamp=timestamp, signature=signature,
                                     now=utcnow())
    return CallbackPublic(recorded=result.recorded, unknown=result.unknown, opted_out=False)


@router.post("/replies", openapi_extra=_REPLY_BODY, responses=_REFUSED)
async def replies(request: Request, uow: UnitOfWorkDep, signature: SignatureHeader,
                  timestamp: TimestampHeader) -> CallbackPublic:
    """A customer's reply to a message; STOP, T or 退订 opt them out and withdraw their marketing consent."""
    body = await request.body()
    result = await run_in_threadpool(service.record_reply, uow, body, timestamp=timestamp, signature=signature,
                                     now=utcnow())
    return CallbackPublic(recorded=result.recorded, unknown=result.unknown, opted_out=result.opted_out)


# --- the borrower's app devices (push tokens) -----------------------------------------------------------------

Platform = Literal["ios", "android", "harmony"]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=512, description="the push token the app's push service gave")
    platform: Platform


class DeviceRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=512)


class DevicePublic(PublicSchema):
    id: int
    platform: str
    token: str = Field(description="masked")
    status: str
    registered_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


@router.get("/devices")
def my_devices(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[DevicePublic]:
    """The signed-in borrower's own app devices, tokens masked."""
    return [DevicePublic.of(d) for d in devices.my_devices(uow, who)]


@router.post("/devices", status_code=201)
def register_device(body: DeviceCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> DevicePublic:
    """The borrower's app registers its push token for the signed-in borrower (again: reactivated)."""
    return DevicePublic.of(devices.register_device(uow, who, body.token, body.platform, at=utcnow()))


@router.post("/devices/unregister")
def unregister_device(body: DeviceRemove, who: CurrentPrincipal, uow: UnitOfWorkDep) -> DevicePublic:
    """The borrower's app removes its token (signing out); another borrower's token is not found."""
    return DevicePublic.of(devices.unregister_device(uow, who, body.token, at=utcnow()))
