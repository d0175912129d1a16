"""Who is calling: roles, permissions, and the principal every use case checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from microlend.core.errors import PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"
    CREDIT_OFFICER = "credit_officer"
    APPROVER = "approver"
    OPERATIONS = "operations"
    RISK_ANALYST = "risk_analyst"
    MODEL_VALIDATOR = "model_validator"  # 模型验证: independent of the modellers who train
    MARKETER = "marketer"
    COLLECTOR = "collector"
    AUDITOR = "auditor"
    BORROWER = "borrower"
    SYSTEM = "system"


class Permission(StrEnum):
    MANAGE_USERS = "manage_users"
    VIEW_CUSTOMERS = "view_customers"
    MANAGE_CUSTOMERS = "manage_customers"
    VIEW_PERSONAL_DATA = "view_personal_data"  # unmasked ID numbers and phones
    VIEW_AUDIT = "view_audit"
    # servicing
    VIEW_LOANS = "view_loans"
    MANAGE_PRODUCTS = "manage_products"
    DISBURSE = "disburse"
    BOOK_LOANS = "book_loans"  # direct booking of a loan or credit line (migration, corrections)
    APPROVE_BOOKINGS = "approve_bookings"  # the second person who releases a booked loan's money
    POST_REPAYMENT = "post_repayment"
    REVERSE_REPAYMENT = "reverse_repayment"
    WRITE_OFF = "write_off"  # request a write-off (核销)
    APPROVE_WRITE_OFF = "approve_write_off"  # the second person who approves (and executes) a write-off
    CLASSIFY_LOANS = "classify_loans"  # judgement downgrades of the five-category class, with a reason
    RESTRUCTURE_LOANS = "restructure_loans"  # request an extension (展期) or a restructuring (重组)
    APPROVE_RESTRUCTURE = "approve_restructure"  # the second person who approves (and carries out) one
    RUN_CLOSE_OF_BUSINESS = "run_close_of_business"
    RUN_JOBS = "run_jobs"  # the bank's calendar: see the worker's jobs and runs, ask for a run again
    VIEW_LEDGER = "view_ledger"
    VIEW_PORTFOLIO = "view_portfolio"  # portfolio analytics: vintages, roll rates, flow and cure rates
    # credit data and risk
    MANAGE_DATASETS = "manage_datasets"
    MANAGE_DATA_SOURCES = "manage_data_sources"  # external data providers: where, with which key, at what cost
    VIEW_DATA_SOURCES = "view_data_sources"  # provider settings (never the key), calls and their cost
    TRAIN_MODELS = "train_models"
    APPROVE_MODELS = "approve_models"
    VALIDATE_MODELS = "validate_models"  # draft -> validated, against the model gates
    MANAGE_MODEL_GATES = "manage_model_gates"  # the bank's minimum standard for models
    VIEW_MODELS = "view_models"
    SCORE = "score"
    # decisioning
    VIEW_POLICIES = "view_policies"
    EDIT_POLICIES = "edit_policies"
    PUBLISH_POLICIES = "publish_policies"
    DECIDE = "decide"
    VIEW_DECISIONS = "view_decisions"
    # origination
    APPLY = "apply"
    VIEW_APPLICATIONS = "view_applications"
    RECOMMEND = "recommend"
    APPROVE_CREDIT = "approve_credit"
    MANAGE_CREDIT_LINES = "manage_credit_lines"
    ASSIST_SIGNING = "assist_signing"  # text a borrower a one-time code to consent or sign in the field
    # collections
    COLLECT = "collect"
    # marketing
    MANAGE_CAMPAIGNS = "manage_campaigns"
    MANAGE_MESSAGING = "manage_messaging"  # the bank's SMS and push gateways and its contact policy
    VIEW_CAMPAIGNS = "view_campaigns"


P = Permission
#: Acts only the operations desk starts: an administrator manages users and products, but does not book money.
OPERATIONS_ONLY = frozenset({P.BOOK_LOANS})
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # an administrator runs the bank's set-up (users, products, jobs) and sees personal data masked like an
    # auditor: unmasked ID numbers and phones are for the roles that serve customers; booking is operations'
    Role.ADMIN: frozenset(Permission) - OPERATIONS_ONLY - {P.VIEW_PERSONAL_DATA},
    Role.CREDIT_OFFICER: frozenset({
        P.VIEW_CUSTOMERS, P.MANAGE_CUSTOMERS, P.VIEW_PERSONAL_DATA, P.VIEW_LOANS, P.APPLY,
        P.VIEW_APPLICATIONS, P.RECOMMEND, P.VIEW_DECISIONS, P.DECIDE, P.POST_REPAYMENT, P.VIEW_CAMPAIGNS,
        P.SCORE, P.VIEW_MODELS, P.VIEW_POLICIES, P.ASSIST_SIGNING, P.CLASSIFY_LOANS, P.RESTRUCTURE_LOANS,
    }),
    Role.APPROVER: frozenset({
        P.VIEW_CUSTOMERS, P.VIEW_LOANS, P.VIEW_APPLICATIONS, P.APPROVE_CREDIT, P.VIEW_DECISIONS,
        P.MANAGE_CREDIT_LINES, P.DISBURSE, P.VIEW_MODELS, P.VIEW_POLICIES, P.SCORE, P.APPROVE_BOOKINGS,
        P.APPROVE_WRITE_OFF, P.APPROVE_RESTRUCTURE,
    }),
    Role.OPERATIONS: frozenset({
        P.VIEW_CUSTOMERS, P.VIEW_LOANS, P.VIEW_APPLICATIONS, P.BOOK_LOANS, P.APPROVE_BOOKINGS, P.POST_REPAYMENT,
        P.VIEW_LEDGER, P.RUN_JOBS, P.VIEW_PORTFOLIO,
    }),
    Role.RISK_ANALYST: frozenset({
        P.VIEW_CUSTOMERS, P.VIEW_LOANS, P.MANAGE_DATASETS, P.TRAIN_MODELS, P.APPROVE_MODELS,
        P.VIEW_MODELS, P.SCORE, P.VIEW_POLICIES, P.EDIT_POLICIES, P.PUBLISH_POLICIES, P.VIEW_DECISIONS,
        P.DECIDE, P.VIEW_APPLICATIONS, P.VIEW_LEDGER, P.VIEW_DATA_SOURCES, P.CLASSIFY_LOANS, P.VIEW_PORTFOLIO,
    }),
    Role.MODEL_VALIDATOR: frozenset({
        P.VIEW_MODELS, P.VALIDATE_MODELS, P.SCORE, P.VIEW_POLICIES, P.VIEW_DECISIONS,
    }),
    Role.MARKETER: frozenset({P.VIEW_CUSTOMERS, P.MANAGE_CAMPAIGNS, P.VIEW_CAMPAIGNS}),
    Role.COLLECTOR: frozenset({
        P.VIEW_CUSTOMERS, P.VIEW_PERSONAL_DATA, P.VIEW_LOANS, P.COLLECT, P.POST_REPAYMENT,
    }),
    Role.AUDITOR: frozenset({
        P.VIEW_CUSTOMERS, P.VIEW_AUDIT, P.VIEW_LOANS, P.VIEW_LEDGER, P.VIEW_MODELS, P.VIEW_POLICIES,
        P.VIEW_DECISIONS, P.VIEW_APPLICATIONS, P.VIEW_CAMPAIGNS, P.VIEW_DATA_SOURCES,
    }),
    Role.BORROWER: frozenset({P.APPLY}),
    Role.SYSTEM: frozenset(Permission),
}

#: Roles a bank can give its staff (borrower and system identities are made by the platform).
STAFF_ROLES = [r for r in Role if r not in (Role.BORROWER, Role.SYSTEM)]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller inside one tenant. Every service function takes one and checks it."""

    user_id: int
    tenant_id: int
    username: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    customer_id: int | None = None  # set for borrowers: the only customer they may see

    @property
    def permissions(self) -> frozenset[Permission]:
        perms: set[Permission] = set()
        for role in self.roles:
            perms |= ROLE_PERMISSIONS.get(role, frozenset())
        return frozenset(perms)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            roles = ", ".join(sorted(self.roles)) or "none"
            raise PermissionDenied(f"your roles ({roles}) do not allow '{permission.value}'",
                                   permission=permission.value)

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


def system_principal(tenant_id: int, username: str = "system") -> Principal:
    """The identity of scheduled jobs and platform-initiated work (close of business, demo seeding)."""
    return Principal(user_id=0, tenant_id=tenant_id, username=username, roles=frozenset({Role.SYSTEM}))
