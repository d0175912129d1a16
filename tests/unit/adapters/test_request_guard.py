"""The request guard on its own: a body past the limit is read no further than the limit, and NULs are found
by field."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from microlend.api.guard import RequestGuard, nul_in_form, nul_in_json, nul_in_url

CHUNK = 64 * 1024


async def _reading_app(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads its whole body, then answers 200."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _run(content_type: bytes, chunks: int, limit: int = 4 * CHUNK) -> tuple[int, int]:
    """(status answered, body chunks the guard took from the client) for a chunked body of `chunks` pieces."""
    taken = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": taken < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/customers", "raw_path": b"/api/v1/customers",
             "query_string": b"", "headers": [(b"content-type", content_type)]}
    guard = RequestGuard(_reading_app, max_bytes=limit, upload_bytes=limit * 10, upload_paths=frozenset())
    # a thread of its own: another test in this process (the browser's) may hold a running loop on this one
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, guard(scope, receive, send)).result()
    return sent[0]["status"], taken


@pytest.mark.parametrize("content_type", [b"application/json", b"application/octet-stream", b"multipart/form-data"])
def test_a_chunked_body_is_read_no_further_than_the_limit(content_type: bytes) -> None:
    status, taken = _run(content_type, chunks=1000)
    assert status == 413 and taken == 5  # four chunks fit, the fifth passes the limit: the rest stay unread


@pytest.mark.parametrize("content_type", [b"application/json", b"application/octet-stream"])
def test_a_body_within_the_limit_reaches_the_app(content_type: bytes) -> None:
    assert _run(content_type, chunks=4) == (200, 4)


def test_nul_is_found_by_field() -> None:
    assert nul_in_json(json.dumps({"a": {"b": ["x", "y\x00"]}}).encode()) == "a.b.1"
    assert nul_in_json(json.dumps({"k\x00": 1}).encode()) == "k"
    assert nul_in_json(json.dumps({"a": "C:\\u0000"}).encode()) is None  # an escaped backslash, not a NUL
    assert nul_in_json(b"not json \\u0000") is None  # left to the route's own validation
    assert nul_in_form(b"name=a%00b&x=1") == "name"
    assert nul_in_form(b"name=ab") is None
    assert nul_in_url({"path": "/customers", "raw_path": b"/customers", "query_string": b"q=%00"}) == "q"
    assert nul_in_url({"path": "/a\x00", "raw_path": b"/a%00", "query_string": b""}) == "path"
