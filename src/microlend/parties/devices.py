"""Borrowers' app devices (设备推送令牌): the push token the bank's app registers for its signed-in borrower,
so app pushes reach the borrower's devices; unregistered by the borrower (signing out), or disabled when the
push gateway reports the token invalid (the app was removed). A token is the borrower's own: one borrower
never sees, registers over or removes another's. Tokens are encrypted at rest and shown masked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from microlend.core import audit, crypto
from microlend.core.errors import NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.parties.tables import CustomerRow, DeviceRow

PLATFORMS = ("ios", "android", "harmony")
ACTIVE, DISABLED = "active", "disabled"
#: why a device stopped receiving pushes
UNREGISTERED, INVALID_TOKEN = "unregistered", "invalid_token"
#: at most this many active devices per borrower: the oldest is disabled when a new one comes
MAX_DEVICES = 5
_TOKEN = re.compile(r"^[A-Za-z0-9:_\-.]{16,512}$")


@dataclass(frozen=True)
class Device:
    id: int
    platform: str
    token: str  # masked
    status: str
    registered_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


def _view(row: DeviceRow) -> Device:
    return Device(row.id, row.platform, row.token_masked, row.status, row.registered_at, row.disabled_at,
                  row.disabled_reason)


def check_token(token: str) -> str:
    token = token.strip()
    if not _TOKEN.match(token):
        raise ValidationError("token: 16 to 512 letters, digits or : _ - . as the app's push service gave it",
                              field="token")
    return token


def _borrower(who: Principal) -> int:
    """The customer a signed-in borrower is; staff never hold a borrower's device tokens."""
    who.require(Permission.APPLY)
    if not who.has_role(Role.BORROWER) or who.customer_id is None:
        raise PermissionDenied("devices are registered by the borrower's own app")
    return who.customer_id


def register_device(uow: UnitOfWork, who: Principal, token: str, platform: str, *, at: datetime) -> Device:
    """The borrower's app registers its push token; registering it again keeps one row (reactivated). A token
    last held by another borrower of the bank (a device handed on) moves to this borrower."""
    customer_id = _borrower(who)
    token = check_token(token)
    if platform not in PLATFORMS:
        raise ValidationError(f"platform: one of {', '.join(PLATFORMS)}", field="platform")
    index = crypto.blind_index(f"push:{token}")
    with uow:
        s = uow.session
        customer = s.get(CustomerRow, customer_id)
        if customer is None or customer.tenant_id != who.tenant_id:
            raise NotFound("customer not found", field="customer_id")
        row = s.execute(select(DeviceRow).where(DeviceRow.tenant_id == who.tenant_id,
                                                DeviceRow.token_index == index)).scalar_one_or_none()
        before = None if row is None else {"customer_id": row.customer_id, "status": row.status}
        if row is None:
            row = DeviceRow(tenant_id=who.tenant_id, token_index=index, token_enc=crypto.encrypt(token),
                            token_masked=f"{token[:4]}****{token[-4:]}")  # fits its column
            s.add(row)
        row.customer_id, row.platform, row.status = customer_id, platform, ACTIVE
        row.registered_at, row.disabled_at, row.disabled_reason = at, None, None
        s.flush()
        active = list(s.execute(select(DeviceRow).where(
            DeviceRow.tenant_id == who.tenant_id, DeviceRow.customer_id == customer_id, DeviceRow.status == ACTIVE,
            DeviceRow.id != row.id).order_by(DeviceRow.registered_at.desc(), DeviceRow.id.desc())).scalars())
        for old in active[MAX_DEVICES - 1:]:
            old.status, old.disabled_at, old.disabled_reason = DISABLED, at, "replaced"
        audit.record(s, who, "device.register", "device", row.id, before=before,
                     after={"customer_id": customer_id, "platform": platform, "token": row.token_masked})
        result = _view(row)
        uow.commit()
    return result


def unregister_device(uow: UnitOfWork, who: Principal, token: str, *, at: datetime) -> Device:
    """The borrower's app removes its token (signing out): no more pushes to it. Another borrower's token,
    or one never registered, is not found."""
    customer_id = _borrower(who)
    token = check_token(token)
    with uow:
        s = uow.session
        row = s.execute(select(DeviceRow).where(
            DeviceRow.tenant_id == who.tenant_id, DeviceRow.token_index == crypto.blind_index(f"push:{token}"),
            DeviceRow.customer_id == customer_id)).scalar_one_or_none()
        if row is None:
            raise NotFound("device not found", field="token")
        if row.status == ACTIVE:
            row.status, row.disabled_at, row.disabled_reason = DISABLED, at, UNREGISTERED
            audit.record(s, who, "device.unregister", "device", row.id, after={"token": row.token_masked})
        result = _view(row)
        uow.commit()
    return result


def my_devices(uow: UnitOfWork, who: Principal) -> list[Device]:
    """The borrower's own devices, newest first, tokens masked."""
    customer_id = _borrower(who)
    with uow:
        return [_view(r) for r in uow.session.execute(select(DeviceRow).where(
            DeviceRow.tenant_id == who.tenant_id, DeviceRow.customer_id == customer_id)
            .order_by(DeviceRow.registered_at.desc(), DeviceRow.id.desc())).scalars()]


def _staff(who: Principal) -> None:
    if who.has_role(Role.BORROWER) or who.customer_id is not None:
        raise PermissionDenied("push targets are read by the bank's senders, not by a borrower")


def push_targets(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """For each of these customers of the caller's bank, their active devices as (device id, push token),
    newest first: what a push sender addresses. Customers without a device are absent."""
    _staff(who)
    ids = sorted(set(customer_ids))
    found: dict[int, list[tuple[int, str]]] = {}
    with uow:
        for start in range(0, len(ids), 500):
            for device_id, customer_id, enc in uow.session.execute(
                    select(DeviceRow.id, DeviceRow.customer_id, DeviceRow.token_enc).where(
                        DeviceRow.tenant_id == who.tenant_id, DeviceRow.status == ACTIVE,
                        DeviceRow.customer_id.in_(ids[start:start + 500]))
                    .order_by(DeviceRow.registered_at.desc(), DeviceRow.id.desc())).all():
                found.setdefault(int(customer_id), []).append((int(device_id), crypto.decrypt(enc)))
    return found


def disable_devices(uow: UnitOfWork, who: Principal, device_ids: Sequence[int], *, reason: str, at: datetime) -> int:
    """The push gateway said these tokens are no longer valid: no more pushes to them. Ids of another bank's
    devices are ignored; how many were disabled."""
    _staff(who)
    ids = sorted(set(device_ids))
    if not ids:
        return 0
    with uow:
        s = uow.session
        rows = list(s.execute(select(DeviceRow).where(
            DeviceRow.tenant_id == who.tenant_id, DeviceRow.id.in_(ids), DeviceRow.status == ACTIVE)).scalars())
        for row in rows:
            row.status, row.disabled_at, row.disabled_reason = DISABLED, at, reason[:40]
        if rows:
            audit.record(s, who, "device.disable", "device", ",".join(str(r.id) for r in rows)[:100],
                         after={"reason": reason[:40], "devices": len(rows)})
        uow.commit()
    return len(rows)
