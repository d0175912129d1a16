"""One mapping from errors to HTTP: problem+json bodies, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from microlend.core import logformat
from microlend.core.errors import AuthenticationFailed, DomainError, RateLimited

log = logging.getLogger("microlend.api")
PROBLEM = "application/problem+json"
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           409: "Conflict", 413: "Payload too large", 415: "Unsupported media type", 422: "Unprocessable content",
           429: "Too many requests", 500: "Internal server error"}


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error (RFC 9457 problem details), sent as `application/problem+json`."""

    type: str = Field(examples=["about:blank#not_found"], description="about:blank#<code>")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what is wrong, in the user's terms")
    field: str | None = Field(default=None, description="the field or parameter at fault")
    errors: list[FieldProblem] | None = Field(default=None, description="every field at fault (422)")


PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def problem(status: int, detail: str, *, code: str | None = None, field: str | None = None,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"about:blank#{code or status}", "title": _TITLES.get(status, "Error"),
                            "status": status, "detail": detail}
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    _document(app)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            headers = {"Retry-After": str(exc.retry_after)}
        return problem(exc.status_code, exc.message, code=exc.code, field=exc.field, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            where = _loc(e.get("loc", ()))
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            errors.append({"field": where, "message": msg})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        first = errors[0]["field"] if errors else None
        return problem(422, detail, code="validation_error", field=first, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        rid = logformat.request_id.get()
        return problem(500, "an unexpected error occurred; it has been logged" + (f" (request {rid})" if rid else ""),
                       headers={"X-Request-ID": rid} if rid else None)


def _document(app: FastAPI) -> None:
    """The OpenAPI document names the problem body its error responses refer to (see `api.routing`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(defs.pop("$defs", {}))
            schemas["Problem"] = defs
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
