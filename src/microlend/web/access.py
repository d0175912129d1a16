"""What a member of staff may follow: the names of roles and permissions in the reader's language, the roles
that hold a permission, which links a page may show, and what the page a refused request leads to says
(what was tried, which role would do, a way back)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from microlend.core.errors import PermissionDenied
from microlend.core.identity import ROLE_PERMISSIONS, STAFF_ROLES, Permission, Principal, Role

P = Permission

#: Every role's name on the pages (English msgids; zh-CN in firsthour.po).
ROLE_LABELS: dict[Role, str] = {
    Role.ADMIN: "Administrator",
    Role.CREDIT_OFFICER: "Loan officer",
    Role.APPROVER: "Credit approver",
    Role.OPERATIONS: "Operations",
    Role.RISK_ANALYST: "Risk analyst",
    Role.MODEL_VALIDATOR: "Model validator",
    Role.MARKETER: "Marketer",
    Role.COLLECTOR: "Collector",
    Role.AUDITOR: "Auditor",
    Role.BORROWER: "Borrower",
    Role.SYSTEM: "The platform",
}

#: What each permission lets a person do, as the refusal page says it.
PERMISSION_LABELS: dict[Permission, str] = {
    P.MANAGE_USERS: "manage the bank's users",
    P.VIEW_CUSTOMERS: "see customers",
    P.MANAGE_CUSTOMERS: "add and change customers",
    P.VIEW_PERSONAL_DATA: "see full ID numbers and mobiles",
    P.VIEW_AUDIT: "read the audit trail",
    P.VIEW_LOANS: "see loans",
    P.MANAGE_PRODUCTS: "manage loan products",
    P.DISBURSE: "release loan funds",
    P.BOOK_LOANS: "book loans directly",
    P.APPROVE_BOOKINGS: "approve booked loans",
    P.POST_REPAYMENT: "post repayments",
    P.REVERSE_REPAYMENT: "reverse repayments",
    P.WRITE_OFF: "ask for write-offs",
    P.APPROVE_WRITE_OFF: "approve write-offs",
    P.RESTRUCTURE_LOANS: "ask for extensions and restructurings",
    P.APPROVE_RESTRUCTURE: "approve extensions and restructurings",
    P.CLASSIFY_LOANS: "change a loan's five-category class",
    P.RUN_CLOSE_OF_BUSINESS: "run close of business",
    P.RUN_JOBS: "see and rerun the bank's scheduled jobs",
    P.VIEW_LEDGER: "see the ledger",
    P.VIEW_PORTFOLIO: "see portfolio analytics",
    P.MANAGE_DATASETS: "manage datasets",
    P.MANAGE_DATA_SOURCES: "set up external data providers",
    P.VIEW_DATA_SOURCES: "see external data providers and their calls",
    P.TRAIN_MODELS: "train models",
    P.APPROVE_MODELS: "approve models",
    P.VALIDATE_MODELS: "validate models",
    P.MANAGE_MODEL_GATES: "set the model gates",
    P.VIEW_MODELS: "see models",
    P.SCORE: "score customers",
    P.VIEW_POLICIES: "see credit policies",
    P.EDIT_POLICIES: "edit credit policies",
    P.PUBLISH_POLICIES: "publish credit policies",
    P.DECIDE: "decide applications",
    P.VIEW_DECISIONS: "see credit decisions",
    P.APPLY: "apply for loans",
    P.VIEW_APPLICATIONS: "see applications",
    P.RECOMMEND: "recommend applications",
    P.APPROVE_CREDIT: "approve credit",
    P.MANAGE_CREDIT_LINES: "manage credit lines",
    P.ASSIST_SIGNING: "text borrowers a signing code",
    P.COLLECT: "work on collections",
    P.MANAGE_CAMPAIGNS: "manage marketing campaigns",
    P.VIEW_CAMPAIGNS: "see marketing campaigns",
    P.MANAGE_MESSAGING: "set up the SMS and push gateways and the contact policy",
}

#: What the customer 360 page reads: the customer, their loans and their applications.
CUSTOMER_360 = (P.VIEW_CUSTOMERS, P.VIEW_LOANS, P.VIEW_APPLICATIONS)


def may(who: Principal | None, permissions: Iterable[Permission]) -> bool:
    """Whether `who` may follow a link to a page that needs all of `permissions` (staff pages only)."""
    return who is not None and not who.has_role(Role.BORROWER) and all(who.can(p) for p in permissions)


def may_open_customer_360(who: Principal | None) -> bool:
    return may(who, CUSTOMER_360)


def roles_with(permission: Permission) -> list[Role]:
    """The staff roles that hold `permission`, in the order a bank lists them."""
    return [role for role in STAFF_ROLES if permission in ROLE_PERMISSIONS.get(role, frozenset())]


@dataclass(frozen=True)
class Refusal:
    """What the refusal page shows: what the person tried, what it needs, who has it, and where back is."""

    action: str  # "open" or "send"
    path: str
    permission: Permission | None
    roles: list[Role]  # the staff roles that would do
    your_roles: list[Role]
    reason: str | None  # a rule's own message (four eyes, ...) when no permission is the reason
    back: str


def _handled_permission() -> tuple[Permission | None, str | None]:
    """The permission named by the PermissionDenied being handled (the page is drawn inside the `except`
    that caught it), and its message when it is a rule's own rather than a permission's."""
    exc = sys.exc_info()[1]
    if not isinstance(exc, PermissionDenied):
        return None, None
    if exc.permission is not None:
        try:
            return Permission(exc.permission), None
        except ValueError:
            return None, None
    return None, exc.message if exc.message != "forbidden" else None


def _back(request: Request) -> str:
    """The page the person came from, when it is one of ours and not this one; else the start page."""
    referer = urlsplit(request.headers.get("referer", ""))
    here = request.url
    if referer.netloc == here.netloc and referer.path.startswith("/") and referer.path != here.path:
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


_RAW = re.compile(r"do not allow '([a-z_]+)'")


def refusal(request: Request, who: Principal, nav: Iterable[tuple[str, str, Permission]],
            message: object = None) -> Refusal:
    """Describe a refused request: the permission the service named (the exception being handled, else the
    page's message), else the one the menu asks for the page (the longest menu path the address starts with)
    when the person lacks it; a rule's own message (four eyes, ...) is the reason."""
    permission, reason = _handled_permission()
    if permission is None and reason is None and isinstance(message, str) and message != "forbidden":
        raw = _RAW.search(message)
        if raw is not None and raw.group(1) in {p.value for p in Permission}:
            permission = Permission(raw.group(1))
        else:
            reason = message
    path = request.url.path
    if permission is None:
        entries = sorted((e for e in nav if path == e[0] or path.startswith(e[0].rstrip("/") + "/")),
                         key=lambda e: len(e[0]), reverse=True)
        permission = next((perm for _, _, perm in entries if not who.can(perm)), None)
    return Refusal(
        action="open" if request.method in ("GET", "HEAD") else "send",
        path=path,
        permission=permission,
        roles=roles_with(permission) if permission is not None else [],
        your_roles=sorted(who.roles, key=lambda r: list(Role).index(r)),
        reason=reason,
        back=_back(request),
    )
