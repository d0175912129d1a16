"""The edge of the HTTP app: a request body over its size limit is answered 413 before a route reads it (a
chunked body is cut off once it passes the limit, never read whole), and a NUL character in the path, the
query string, a JSON string or a form field is answered 422 naming the field (databases refuse or cut it)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microlend.api.errors import problem

NUL = "\x00"
_JSON_NUL = b"\\u0000"


class BodyTooLarge(Exception):
    """The body passed its limit while a route was reading it."""


class RequestGuard:
    """ASGI middleware: one size limit for every request body, a larger one for the dataset upload paths,
    and no NUL character in any text a route will see."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_bytes: int, upload_paths: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = nul_in_url(scope)
        if field is not None:
            await _nul_problem(field, scope)(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"].rstrip("/") in self.upload_paths else self.max_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json" or kind.endswith("+json") or kind == "application/x-www-form-urlencoded":
            await self._buffered(scope, receive, send, limit, kind)
        else:
            await self._streamed(scope, receive, send, limit)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, limit: int, kind: str) -> None:
        """A JSON or form body is small by nature: read it (never past the limit), check it, hand it on."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        field = nul_in_json(body) if "json" in kind else nul_in_form(body)
        if field is not None:
            await _nul_problem(field, scope)(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Any other body (an upload) is counted as the route reads it; past the limit the read fails and
        whatever the route would have answered is replaced by 413."""
        seen = 0
        exceeded = False
        started = False

        async def counting() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge(f"the request body is larger than {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await _too_large(limit)(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, guarded_send)
        except BodyTooLarge:
            if not started:
                started = True
                await _too_large(limit)(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}
    return receive


def _too_large(limit: int) -> Any:
    return problem(413, f"the request body is larger than the limit of {limit} bytes", code="payload_too_large")


def _nul_problem(field: str, scope: Scope) -> Any:
    message = "must not contain a NUL character"
    if _wants_page(scope):
        return HTMLResponse(_PAGE.format(field=html.escape(field), message=message), status_code=422)
    return problem(422, f"{field}: {message}", code="validation_error", field=field,
                   errors=[{"field": field, "message": message}])


_PAGE = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>422</title>"
         "<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"error\">"
         "<h1>422</h1><p class=\"error\">{field}: {message}</p><p><a href=\"/\">←</a></p>"
         "</main></body></html>")


def _wants_page(scope: Scope) -> bool:
    """A browser on a page (not the API) is answered with a page, not a JSON problem."""
    if scope["path"].startswith("/api/"):
        return False
    accept = next((v for k, v in scope.get("headers", []) if k.lower() == b"accept"), b"")
    return b"text/html" in accept


def nul_in_url(scope: Scope) -> str | None:
    """The query parameter (or 'path') that holds a NUL character, if any."""
    if NUL in scope.get("path", "") or NUL in unquote(scope.get("raw_path", b"").decode("latin-1")):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return _nul_in_pairs(query) or "query"
    return None


def nul_in_form(body: bytes) -> str | None:
    """The form field that holds a NUL character, if any."""
    if b"%00" not in body and b"\x00" not in body:
        return None
    return _nul_in_pairs(body) or "body"


def _nul_in_pairs(encoded: bytes) -> str | None:
    for name, value in parse_qsl(encoded.decode("utf-8", "replace"), keep_blank_values=True):
        if NUL in name or NUL in value:
            return name.replace(NUL, "") or "query"
    return None


def nul_in_json(body: bytes) -> str | None:
    """The dotted path of the first JSON string (key or value) holding a NUL character, if any. A body that
    is not JSON is left to the route's own validation."""
    if _JSON_NUL not in body and b"\x00" not in body:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return next(_nul_paths(document, ()), None)


def _nul_paths(value: object, where: tuple[str, ...]) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield ".".join(where) or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield ".".join((*where, key.replace(NUL, ""))) or "body"
            yield from _nul_paths(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nul_paths(item, (*where, str(i)))
