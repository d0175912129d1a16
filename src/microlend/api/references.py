"""Ids in request bodies and queries, resolved within the caller's bank before the handler runs.

A field or query parameter typed with one of the aliases below (`CustomerRef`, `OptionalCampaignRef` ...)
names an object of a kind a module registered with `core.references`; the routes of every `/api/v1` router
are `api.routing.ApiRoute`s, which look at the handler's parameters once, when the route is built, and resolve every
such id of a request within the caller's bank (404 naming the field otherwise) before the handler sees it.
The OpenAPI schema marks each of them with `x-reference: <kind>`, which the tests read to find them all."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from microlend.api.deps import MAX_ID
from microlend.core import references
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork


@dataclass(frozen=True)
class Ref:
    """Metadata of an id field: the kind of object it names."""

    kind: str


def _ref(kind: str) -> dict[str, Any]:
    return {"x-reference": kind}


CustomerRef = Annotated[int, Field(ge=1, le=MAX_ID, json_schema_extra=_ref("customer")), Ref("customer")]
OptionalCustomerRef = Annotated[int | None, Field(ge=1, le=MAX_ID, json_schema_extra=_ref("customer")),
                                Ref("customer")]
OptionalApplicationRef = Annotated[int | None, Field(ge=1, le=MAX_ID, json_schema_extra=_ref("application")),
                                   Ref("application")]
OptionalCampaignRef = Annotated[int | None, Field(ge=1, le=MAX_ID, json_schema_extra=_ref("campaign")),
                                Ref("campaign")]
OptionalRunRef = Annotated[int | None, Field(ge=1, le=MAX_ID, json_schema_extra=_ref("preapproval_run")),
                           Ref("preapproval_run")]
OptionalUserRef = Annotated[int | None, Field(ge=1, le=MAX_ID, json_schema_extra=_ref("user")), Ref("user")]
#: query parameters
CustomerQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, json_schema_extra=_ref("customer")), Ref("customer")]
ApplicationQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, json_schema_extra=_ref("application")),
                            Ref("application")]
UserQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, json_schema_extra=_ref("user")), Ref("user")]


def _ref_of(annotation: Any) -> Ref | None:
    if typing.get_origin(annotation) is Annotated:
        return next((m for m in annotation.__metadata__ if isinstance(m, Ref)), None)
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The body model of a parameter typed `Model` or `Model | None`."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    candidates = typing.get_args(annotation) or (annotation,)
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _model_refs(model: type[BaseModel]) -> dict[str, Ref]:
    return {name: ref for name, info in model.model_fields.items()
            for ref in info.metadata if isinstance(ref, Ref)}


@dataclass(frozen=True)
class _Plan:
    """Where a handler's ids are: query parameters, fields of body models, and the caller and unit of work."""

    params: dict[str, Ref]
    bodies: dict[str, dict[str, Ref]]
    who: str
    uow: str

    def references(self, kwargs: dict[str, Any]) -> list[references.Reference]:
        found = [references.Reference(ref.kind, kwargs[name], name)
                 for name, ref in self.params.items() if kwargs.get(name) is not None]
        for name, fields in self.bodies.items():
            body = kwargs.get(name)
            found += [references.Reference(ref.kind, getattr(body, field), field)
                      for field, ref in fields.items() if body is not None and getattr(body, field) is not None]
        return found


def plan(endpoint: Callable[..., Any]) -> _Plan | None:
    """Where `endpoint` takes ids, or None if it takes none. A handler that takes one must also take the
    caller and a unit of work to resolve it with: a route that cannot resolve its ids does not start."""
    hints = typing.get_type_hints(endpoint, include_extras=True)
    hints.pop("return", None)
    params = {name: ref for name, hint in hints.items() if (ref := _ref_of(hint)) is not None}
    bodies = {name: refs for name, hint in hints.items()
              if (model := _model_of(hint)) is not None and (refs := _model_refs(model))}
    if not params and not bodies:
        return None
    who = next((n for n, h in hints.items() if _base(h) is Principal), None)
    uow = next((n for n, h in hints.items() if _base(h) is UnitOfWork), None)
    if who is None or uow is None:
        raise TypeError(f"{endpoint.__qualname__} takes ids but no CurrentPrincipal and UnitOfWorkDep")
    return _Plan(params, bodies, who, uow)


def _base(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def resolving(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint`, resolving the ids of each call within the caller's bank first."""
    where = plan(endpoint)
    if where is None:
        return endpoint

    def check(kwargs: dict[str, Any]) -> None:
        refs = where.references(kwargs)
        if refs:
            references.require(kwargs[where.uow], kwargs[where.who], refs)

    if inspect.iscoroutinefunction(endpoint):
        @functools.wraps(endpoint)
        async def resolved_async(*args: Any, **kwargs: Any) -> Any:
            await run_in_threadpool(check, kwargs)
            return await endpoint(*args, **kwargs)
        return resolved_async

    @functools.wraps(endpoint)
    def resolved(*args: Any, **kwargs: Any) -> Any:
        check(kwargs)
        return endpoint(*args, **kwargs)
    return resolved
