"""The route class of every `/api/v1` router: it resolves the ids a request names within the caller's bank
(`api.references`) and declares, once for all routes, the error answers the API gives — each a problem body
(`application/problem+json`): 401/403 on authenticated routes, 404 on routes that name objects, 409/400 on
writes, 422 on routes that take input, 413 on all, 429 where sign-in is throttled."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute

from microlend.api.errors import PROBLEM, PROBLEM_SCHEMA
from microlend.api.references import resolving
from microlend.core.identity import Principal

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DESCRIPTIONS = {
    400: "The request cannot be read (e.g. a malformed form body)",
    401: "No valid token: sign in first",
    403: "The caller's roles do not allow this",
    404: "An object the request names does not exist in the caller's bank",
    409: "The request clashes with the current state (duplicate, wrong status, concurrent change)",
    413: "The request body is over the size limit",
    422: "The input is invalid; `field` and `errors` name what is wrong",
    429: "Too many attempts: wait for Retry-After seconds",
}


def error_responses(route: APIRoute) -> dict[int | str, dict[str, Any]]:
    """The error answers a route can give, by what kind of route it is."""
    hints = typing.get_type_hints(route.endpoint, include_extras=True)
    authenticated = any(h is Principal or typing.get_args(h)[:1] == (Principal,) for h in hints.values())
    takes_input = bool(get_flat_params(route.dependant) or route.body_field)
    codes = {413}
    if authenticated:
        codes |= {401, 403}
    if takes_input:
        codes |= {422}
        if authenticated:
            codes |= {404}
    if (route.methods or set()) & _WRITES:
        codes |= {400, 409}
    if route.path.endswith("/auth/token"):
        codes |= {401, 429}
    return {code: {"description": _DESCRIPTIONS[code], "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
            for code in sorted(codes)}


class ApiRoute(APIRoute):
    """A route of the REST API (see the module's docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, resolving(endpoint), **kwargs)
        self.responses = {**error_responses(self), **self.responses}  # a route's own declarations win


def api_router(**kwargs: Any) -> APIRouter:
    """An `/api/v1` router whose routes are `ApiRoute`s."""
    return APIRouter(route_class=ApiRoute, **kwargs)
