"""Borrower self-service: registration (客户自助注册), and a borrower's own loans, schedule and repayments.

Registration runs under the platform's identity (nobody is signed in yet) and is audited; servicing is
called under a platform identity that names the borrower, after the ownership check made here.

What the borrower declares is what a bank asks on a phone: identity, mobile, annual turnover and years in
business (the facts the credit policy reads). Credit history is not asked: it comes from the credit bureau,
queried with the consent given when applying (the connected `CreditBureau`; the default one reads the
credit profile held with the customer)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from microlend.core import audit, tenancy
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role, system_principal
from microlend.core.money import parse_amount
from microlend.core.passwords import check_password
from microlend.core.tables import TenantRow, UserRow
from microlend.core.uow import UnitOfWork
from microlend.parties import customers as customer_svc
from microlend.parties.kyc import birth_date_of, validate_mobile, validate_resident_id
from microlend.risk.federation import partnerships
from microlend.servicing import queries as loan_queries
from microlend.servicing import service as servicing

DUPLICATE_ID = ("id_number: this ID number is already registered with the bank; sign in with the mobile "
                "number you registered, or visit a branch")
DUPLICATE_MOBILE = "mobile: this mobile number is already registered; sign in instead"


@dataclass(frozen=True)
class Registration:
    """What a borrower tells us to open an account: identity, a mobile, a password, and the business facts
    the credit policy needs (declared, verified later by the officer or the bureau)."""

    bank: str
    kind: str  # person (resident ID) | business (USCC)
    name: str
    id_number: str
    mobile: str
    password: str
    industry: str = ""
    annual_turnover: Decimal | None = None
    years_in_business: Decimal | None = None
    marketing_consent: bool = False
    owner_id_number: str = ""  # a business: the owner's (legal representative's) resident ID, for the owner's age


@dataclass(frozen=True)
class Registered:
    customer_id: int
    user_id: int
    username: str
    principal: Principal


def borrower_username(mobile: str, bank: str) -> str:
    """A borrower signs in with their mobile; usernames are unique across banks, so the bank is added."""
    return f"{mobile}@{bank}"


def register(uow: UnitOfWork, cmd: Registration) -> Registered:
    """Create the customer and their borrower sign-in in one transaction; a known ID number is refused with a
    message that tells the borrower what to do (and nothing about the existing customer)."""
    if cmd.annual_turnover is not None and cmd.annual_turnover < 0:
        raise ValidationError("annual_turnover: must not be negative", field="annual_turnover")
    if cmd.years_in_business is not None and not Decimal(0) <= cmd.years_in_business <= Decimal(80):
        raise ValidationError("years_in_business: must be between 0 and 80", field="years_in_business")
    mobile = validate_mobile(cmd.mobile, field="mobile")
    check_password(cmd.password, borrower_username(mobile, cmd.bank))  # before anything is written
    with uow:
        s = uow.session
        tenant = s.execute(select(TenantRow).where(TenantRow.name == cmd.bank)).scalar_one_or_none()
        if tenant is None:
            raise NotFound(f"bank '{cmd.bank}' not found", field="bank")
        system = system_principal(tenant.id, "borrower-registration")
        username = borrower_username(mobile, cmd.bank)
        if s.execute(select(UserRow.id).where(UserRow.username == username)).first():
            raise Conflict(DUPLICATE_MOBILE, field="mobile")
        attributes: dict[str, object] = {}
        if cmd.annual_turnover is not None:
            attributes["annual_turnover"] = str(cmd.annual_turnover)
        if cmd.years_in_business is not None:
            attributes["years_in_business"] = str(cmd.years_in_business)
        if cmd.kind == "business" and cmd.owner_id_number.strip():
            owner_id = validate_resident_id(cmd.owner_id_number.strip().upper(), field="owner_id_number")
            attributes["owner_birth_date"] = birth_date_of(owner_id).isoformat()  # the number itself is not kept
        try:
            customer = customer_svc.add_customer(s, system, customer_svc.NewCustomer(
                kind="business" if cmd.kind == "business" else "person", name=cmd.name, id_number=cmd.id_number,
                phone=mobile, industry=cmd.industry, marketing_consent=cmd.marketing_consent,
                attributes=attributes))
        except Conflict as exc:
            if exc.field == "id_number":
                raise Conflict(DUPLICATE_ID, field="id_number") from None
            raise
        user = tenancy.add_user(s, tenant.id, username, cmd.password, [Role.BORROWER.value],
                                display_name=customer.name, customer_id=customer.id)
        audit.record(s, system, "customer.register", "customer", customer.id,
                     after={"kind": customer.kind, "name": customer.name, "id_number": customer.id_number_masked,
                            "phone": customer.phone_masked, "attributes": attributes, "channel": "borrower"})
        audit.record(s, system, "user.create", "user", user.id,
                     after={"username": username, "roles": user.roles, "customer_id": customer.id})
        who = tenancy.principal_for(user)
        result = Registered(customer.id, user.id, username, who)
        try:
            uow.commit()
        except IntegrityError:  # a concurrent registration with the same ID number or mobile won
            raise Conflict(DUPLICATE_ID, field="id_number") from None
    return result


def _require_borrower(who: Principal) -> int:
    who.require(Permission.APPLY)
    if not who.has_role(Role.BORROWER) or who.customer_id is None:
        raise PermissionDenied("these pages are for borrowers")
    return who.customer_id


def _acting(who: Principal) -> Principal:
    """The platform acting for a borrower on their own loan; the audit trail names the borrower."""
    return system_principal(who.tenant_id, f"self-service:{who.username}")


def _own_loan(uow: UnitOfWork, who: Principal, loan_id: int) -> None:
    customer_id = _require_borrower(who)
    owner = loan_queries.loan_owner(uow, who, loan_id)
    if owner is None or owner != customer_id:
        raise NotFound(f"loan {loan_id} not found")


def my_loans(uow: UnitOfWork, who: Principal) -> list[servicing.LoanView]:
    """The signed-in borrower's loans, newest first."""
    customer_id = _require_borrower(who)
    ids = loan_queries.loan_ids_of_customer(uow, who, customer_id, limit=50)
    return [servicing.get_loan(uow, _acting(who), loan_id) for loan_id in ids]


def my_loan(uow: UnitOfWork, who: Principal, loan_id: int) -> servicing.LoanView:
    """One of the borrower's own loans with its schedule; another customer's loan is not found."""
    _own_loan(uow, who, loan_id)
    return servicing.get_loan(uow, _acting(who), loan_id)


def repay(uow: UnitOfWork, who: Principal, loan_id: int, amount: str | Decimal,
          idempotency_key: str) -> servicing.RepaymentView:
    """还款 a borrower pays towards their own loan; the key (one per form shown) makes a double tap harmless."""
    _own_loan(uow, who, loan_id)
    value = parse_amount(str(amount), "amount")
    if value <= 0:
        raise ValidationError("amount: must be positive", field="amount")
    return servicing.post_repayment(uow, _acting(who), loan_id, value,
                                    idempotency_key=f"borrower-{who.user_id}-{idempotency_key}")


def scoring_partners_on_offer(uow: UnitOfWork, who: Principal) -> list[str]:
    """The data partners the borrower's bank may score an application with (its usable partnerships): when there
    is one, the application asks for the partner_scoring consent, and names them."""
    _require_borrower(who)
    return partnerships.scoring_partners(uow, who.tenant_id, utcnow().date())


def products_on_offer(uow: UnitOfWork, who: Principal) -> list[servicing.ProductView]:
    """The bank's loan products a borrower may apply for (term loans; lines are offered by officers)."""
    _require_borrower(who)
    return [p for p in servicing.list_products(uow, system_principal(who.tenant_id, "catalogue"))
            if p.method != "revolving"]
