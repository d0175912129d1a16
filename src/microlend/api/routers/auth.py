"""Authentication and the tenant's users."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from pydantic import BaseModel, Field

from microlend.api.deps import CurrentPrincipal, Id, SettingsDep, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.core import tenancy

router = api_router(prefix="/api/v1", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    user_id: int
    tenant_id: int
    username: str
    roles: list[str]
    permissions: list[str]


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=100)
    password: str = Field(max_length=200)  # the policy (core.passwords) names the rule it breaks
    roles: list[str] = Field(min_length=1)
    display_name: str = Field(default="", max_length=200)
    branch: str = Field(default="", max_length=100)


class UserUpdate(BaseModel):
    """Leave out what does not change. Any change ends the user's sessions and tokens."""

    active: bool | None = None
    roles: list[str] | None = Field(default=None, min_length=1)
    password: str | None = Field(default=None, max_length=200)


class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[str]
    branch: str
    active: bool

    @classmethod
    def from_domain(cls, u: tenancy.User) -> UserPublic:
        return cls(id=u.id, username=u.username, display_name=u.display_name, roles=u.roles, branch=u.branch,
                   active=u.active)


@router.post("/auth/token")
def login(
    request: Request, uow: UnitOfWorkDep, settings: SettingsDep,
    username: Annotated[str, Form()], password: Annotated[str, Form()],
) -> Token:
    """OAuth2 password flow: form fields `username` and `password`; too many failures for the account from
    this client, or from this client across usernames -> 429 with Retry-After (see core.login_throttle)."""
    client = request.client.host if request.client else None
    who = tenancy.authenticate(uow, username, password, settings, client=client)
    return Token(access_token=tenancy.issue_token(who, settings, uow=uow))


@router.get("/me")
def me(who: CurrentPrincipal) -> Me:
    return Me(user_id=who.user_id, tenant_id=who.tenant_id, username=who.username, roles=sorted(who.roles),
              permissions=sorted(p.value for p in who.permissions))


@router.get("/users")
def list_users(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[UserPublic]:
    return [UserPublic.from_domain(u) for u in tenancy.list_users(uow, who)]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> UserPublic:
    user = tenancy.create_user(uow, who, body.username, body.password, body.roles,
                               display_name=body.display_name, branch=body.branch)
    return UserPublic.from_domain(user)


@router.patch("/users/{user_id}")
def update_user(user_id: Id, body: UserUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> UserPublic:
    """Deactivate or reactivate a user, or change their roles or password: their web sessions and bearer
    tokens stop working at once."""
    user = tenancy.update_user(uow, who, user_id, active=body.active, roles=body.roles, password=body.password)
    return UserPublic.from_domain(user)
