"""The OpenAPI document declares the error answers the API gives, as problem+json bodies: a client generated
from it knows every status code it can get and how the body of each reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from microlend.api.errors import PROBLEM
from microlend.api.routing import ApiRoute


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in doc["paths"].items() if p.startswith("/api/v1")
            for m, op in ops.items()]


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The routes of the API, through the routers the app includes."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute) and route.path.startswith("/api/v1"):
            yield route


def test_every_api_route_resolves_ids_and_declares_its_errors(app_client: TestClient) -> None:
    routes = list(api_routes(app_client.app.routes))  # type: ignore[attr-defined]
    assert len(routes) >= 80
    assert routes and all(isinstance(r, ApiRoute) for r in routes), \
        [r.path for r in routes if not isinstance(r, ApiRoute)]


def test_every_error_answer_is_a_declared_problem_body(app_client: TestClient) -> None:
    doc = app_client.get("/openapi.json").json()
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    for method, path, op in operations(doc):
        codes = {int(c) for c in op["responses"] if c[0] == "4"}
        assert 413 in codes, f"{method} {path}"
        if op.get("security"):
            assert {401, 403} <= codes, f"{method} {path}"
        if "{" in path:
            assert 404 in codes, f"{method} {path}"
        if method != "GET":
            assert 409 in codes, f"{method} {path}"
        if op.get("parameters") or op.get("requestBody"):
            assert 422 in codes, f"{method} {path}"
        for code in codes:
            content = op["responses"][str(code)]["content"]
            assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, f"{method} {path}"


def test_an_answer_of_the_api_reads_as_the_declared_problem(app_client: TestClient) -> None:
    r = app_client.get("/api/v1/customers/1")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert set(r.json()) <= {"type", "title", "status", "detail", "field", "errors"}
    r = app_client.get("/api/v1/customers/0", headers={"Authorization": "Bearer x"})
    assert r.status_code in (401, 422) and r.headers["content-type"] == PROBLEM
