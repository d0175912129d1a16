"""The partner's HTTP endpoint: one authenticated `POST /federation/{type}` per protocol message; every
request is logged (time, type, status, size, duration) and every message body goes into the transcript by
its hash. A message that fails authentication is answered 401 and never reaches the protocol."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from microlend.core.errors import DomainError
from microlend.risk.federation.keys import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    NotAuthenticated,
    PartnershipKey,
    ReplayGuard,
    Transcript,
    fresh_headers,
    response_signature,
    verify_request,
)
from microlend.risk.federation.partner import PartnerService

PREFIX = "/federation/"
MAX_BODY = 256 * 1024 * 1024


class RequestLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **entry: Any) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def create_app(service: PartnerService, key: PartnershipKey, state_dir: Path, *,
               keep_bodies: bool = False) -> FastAPI:
    app = FastAPI(title="Microlend federation partner", docs_url=None, redoc_url=None, openapi_url=None)
    guard = ReplayGuard()
    transcript = Transcript(state_dir / "transcript.jsonl", state_dir / "messages" if keep_bodies else None)
    log = RequestLog(state_dir / "requests.log")

    def answer(status: int, payload: dict[str, Any], request_nonce: str, *, signed: bool) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {}
        if signed:
            ts, nonce = fresh_headers()
            headers = {HEADER_TIMESTAMP: ts, HEADER_NONCE: nonce,
                       HEADER_SIGNATURE: response_signature(key, request_nonce, status, ts, nonce, body)}
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    @app.post(PREFIX + "{message_type:path}")
    async def message(message_type: str, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        client = request.client.host if request.client else ""
        path = PREFIX + message_type
        try:
            if len(body) > MAX_BODY:
                raise NotAuthenticated("federation: message too large")
            nonce = verify_request(key, guard, path, {k.lower(): v for k, v in request.headers.items()}, body)
        except NotAuthenticated as exc:
            log.write(client=client, type=message_type, status=401, size=len(body), error=exc.message)
            return JSONResponse({"detail": exc.message}, status_code=401)
        transcript.record("in", message_type, body)
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            status, result = 400, {"detail": "the message body is not a JSON object"}
        else:
            try:
                status, result = 200, service.handle(message_type, payload)
            except DomainError as exc:
                status, result = exc.status_code if exc.status_code < 500 else 400, {"detail": exc.message}
        response = answer(status, result, nonce, signed=True)
        transcript.record("out", message_type, bytes(response.body))
        log.write(client=client, type=message_type, status=status, size=len(body),
                  answer_size=len(response.body), ms=round((time.perf_counter() - started) * 1000, 1))
        return response

    return app
