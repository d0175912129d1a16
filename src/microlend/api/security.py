"""Browser-facing defences of the HTTP app, each one middleware for every route:

- `CsrfGuard`: a request that changes something (POST, PUT, PATCH, DELETE) and is not authorised by an
  `Authorization` header must come from one of the app's own origins (Origin, else Referer), and when it
  carries the session cookie it must also send the session's anti-forgery token (`X-CSRF-Token` header, as
  htmx does, or the `csrf_token` form field every page form holds). Otherwise: 403 with a page that says why.
- `SecurityHeaders`: a Content-Security-Policy of the app's own origin only, nosniff, no referrer to other
  sites, no framing, HSTS in production, and `Cache-Control: no-store` on everything but static assets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microlend.api.errors import problem
from microlend.core import sessions
from microlend.core.settings import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
#: a multipart form must carry its token within this many bytes (page forms put it first, before any file)
MULTIPART_TOKEN_WITHIN = 64 * 1024
_MULTIPART_TOKEN = re.compile(rb'name="csrf_token"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n')

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
#: a self-contained report (its own inline style, charts as data: images, no script) shown in a frame of
#: the app's own pages
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'self'")
#: the API documentation: Swagger UI styles its elements inline
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'")
HSTS = "max-age=31536000; includeSubDomains"

_MESSAGES = {
    "en": ("Request refused", "This request did not come from a page of this site, or the page has expired. "
           "Go back, reload the page and try again."),
    "zh_CN": ("请求被拒绝", "该请求并非来自本站页面，或页面已过期。请返回、刷新页面后重试。"),
}


def report_page(document: str, status_code: int = 200) -> HTMLResponse:
    """A self-contained HTML report: its own stricter policy, and framable by the app's own pages only."""
    return HTMLResponse(document, status_code=status_code,
                        headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})


class CsrfGuard:
    """ASGI middleware: refuses a state-changing request another site could have made with the browser's
    session cookie (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, settings: Settings, cookie: str) -> None:
        self.app = app
        self.secret = settings.secret_key
        self.trusted = frozenset(settings.trusted_origins)
        self.cookie = cookie
        self.locale = settings.default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if "authorization" in headers:  # an API client's own credentials: no ambient authority to abuse
            await self.app(scope, receive, send)
            return
        source = _source_origin(headers)
        session = _cookie(headers.get("cookie", ""), self.cookie)
        if source is not None and source not in self._own_origins(scope, headers):
            await self._refuse(scope, headers, "the request came from another site")(scope, receive, send)
            return
        if not session:  # nothing a forged request could borrow (signing in, the API's token endpoint)
            await self.app(scope, receive, send)
            return
        if source is None:
            await self._refuse(scope, headers, "the request names no origin")(scope, receive, send)
            return
        sent = headers.get(CSRF_HEADER)
        replay: list[Message] = []
        if sent is None:
            sent, replay = await _token_in_body(headers, receive)
        if not sessions.csrf_matches(self.secret, session, sent):
            await self._refuse(scope, headers, "the anti-forgery token is missing or wrong")(scope, receive, send)
            return
        await self.app(scope, _replay(replay, receive) if replay else receive, send)

    def _refuse(self, scope: Scope, headers: dict[str, str], reason: str) -> Any:
        return _refused(scope, headers, self.locale, reason)

    def _own_origins(self, scope: Scope, headers: dict[str, str]) -> frozenset[str]:
        host = headers.get("host", "").lower()
        return self.trusted | {f"{scope.get('scheme', 'http')}://{host}", f"https://{host}"}


class SecurityHeaders:
    """ASGI middleware: the security headers of every response (a route may set a stricter or a looser
    policy of its own, e.g. `report_page`)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.hsts = settings.mode == "production"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        static = path.startswith("/static/")
        csp = DOCS_CSP if path == "/docs" else CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                if self.hsts:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _source_origin(headers: dict[str, str]) -> str | None:
    """Where the request says it comes from: its Origin, else the origin of its Referer ('null' is kept)."""
    origin = headers.get("origin")
    if origin is not None:
        return origin.strip().rstrip("/").lower()
    referer = headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else "null"


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"')
    return ""


async def _token_in_body(headers: dict[str, str], receive: Receive) -> tuple[str | None, list[Message]]:
    """The `csrf_token` field of a form body, and the messages read to find it (handed on to the route)."""
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None, []
    read: list[Message] = []
    body = b""
    more = True
    while more:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = bool(message.get("more_body", False))
        if kind == "multipart/form-data":
            found = _MULTIPART_TOKEN.search(body)
            if found is not None:
                return found.group(1).decode("latin-1"), read
            if len(body) > MULTIPART_TOKEN_WITHIN:
                break
    if kind == "multipart/form-data":
        return None, read
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return next((v for k, v in fields if k == CSRF_FIELD), None), read


def _replay(messages: Iterable[Message], then: Receive) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return await then()
    return receive


def _refused(scope: Scope, headers: dict[str, str], default_locale: str, reason: str) -> Any:
    """403: a short page in the reader's language for a browser on a page, a problem document otherwise."""
    if scope["path"].startswith("/api/") or "text/html" not in headers.get("accept", ""):
        return problem(403, f"request refused: {reason}; reload the page and try again", code="csrf_refused")
    lang = _cookie(headers.get("cookie", ""), "ml_lang")
    if lang not in _MESSAGES:
        first = headers.get("accept-language", "").split(",")[0].strip().lower()
        lang = "en" if first.startswith("en") else "zh_CN" if first.startswith("zh") else default_locale
    if lang not in _MESSAGES:
        lang = "zh_CN"
    title, text = _MESSAGES[lang]
    return HTMLResponse(_PAGE.format(lang="zh-CN" if lang == "zh_CN" else "en", title=html.escape(title),
                                     text=html.escape(text)), status_code=403)


_PAGE = ("<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title>"
         "<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"container\">"
         "<section class=\"card\"><h1>{title}</h1><p class=\"error\" data-testid=\"csrf-refused\">{text}</p>"
         "<p><a href=\"/\">←</a></p></section></main></body></html>")
