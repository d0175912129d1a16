"""A stand-in for a bank's SMS or push gateway (短信网关测试替身), served over real HTTP on loopback: it takes
batches the way `core.delivery.HttpGateway` sends them (bearer key, signed body, our idempotency key per
message), answers with its own ids, and posts signed delivery receipts (and, on request, a customer's reply)
back to the bank's callback addresses. Faults on demand: the next requests answered 503 or 429, addresses
refused for good (a push token: "invalid_token"), addresses whose receipt says failed, push tokens whose
receipt says the token is invalid. Used by the tests, the benchmark and the demo."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from microlend.core.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers, verify


@dataclass(frozen=True)
class Accepted:
    gateway_id: str
    key: str
    to: str
    text: str
    channel: str


@dataclass
class GatewayDouble:
    """The gateway on a free loopback port. `receipts_url` / `replies_url`: the bank's callback addresses
    (receipts are kept in `pending_receipts` until `post_receipts`, or posted at once with `auto_receipts`)."""

    api_key: str = "test-key"
    secret: str = "test-secret"
    receipts_url: str | None = None
    replies_url: str | None = None
    auto_receipts: bool = False
    keep_texts: bool = True
    fail_next: int = 0  # the next requests answered 503
    throttle_next: int = 0  # the next requests answered 429
    reject_to: set[str] = field(default_factory=set)  # addresses refused for good
    undeliverable: set[str] = field(default_factory=set)  # accepted, but the receipt says failed
    invalid_tokens: set[str] = field(default_factory=set)  # push: accepted, the receipt says the token is invalid
    accepted: dict[str, Accepted] = field(default_factory=dict)
    pending_receipts: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    duplicates: int = 0
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        with self._lock:
            for m in messages:
                key, to = str(m["id"]), str(m["to"])
                if to in self.reject_to:
                    error = "invalid_token" if m.get("channel") == "push" else "invalid number"
                    results.append({"id": key, "status": "rejected", "retryable": False, "error": error})
                    continue
                known = self.accepted.get(key)
                if known is not None:  # the same key again: the same answer, nothing sent twice
                    self.duplicates += 1
                    results.append({"id": key, "status": "accepted", "gateway_id": known.gateway_id})
                    continue
                self._seq += 1
                gid = f"gw-{self._seq}"
                self.accepted[key] = Accepted(gid, key, to, str(m["text"]) if self.keep_texts else "",
                                              str(m.get("channel", "sms")))
                if self.receipts_url:
                    receipt = {"id": key, "gateway_id": gid,
                               "status": "failed" if to in self.undeliverable else "delivered",
                               "at": datetime.now(UTC).isoformat()}
                    if to in self.invalid_tokens:
                        receipt.update(status="undeliverable", reason="invalid_token")
                    self.pending_receipts.append(receipt)
                results.append({"id": key, "status": "accepted", "gateway_id": gid})
        return results

    def app(self) -> Starlette:
        async def messages(request: Request) -> Response:
            self.requests += 1
            body = await request.body()
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if not verify(self.secret, body, request.headers.get(TIMESTAMP_HEADER, ""),
                          request.headers.get(SIGNATURE_HEADER, ""), now=datetime.now(UTC)):
                return JSONResponse({"error": "bad signature"}, status_code=401)
            with self._lock:
                if self.throttle_next > 0:
                    self.throttle_next -= 1
                    return JSONResponse({"error": "slow down"}, status_code=429)
                if self.fail_next > 0:
                    self.fail_next -= 1
                    return JSONResponse({"error": "unavailable"}, status_code=503)
            try:
                batch = json.loads(body)["messages"]
            except (ValueError, KeyError):
                return JSONResponse({"error": "malformed"}, status_code=400)
            results = self._answer(batch)
            if self.auto_receipts and self.pending_receipts:
                asyncio.get_running_loop().run_in_executor(None, self.post_receipts)
            return JSONResponse({"results": results})

        async def healthz(_: Request) -> Response:
            return PlainTextResponse("ok")

        return Starlette(routes=[Route("/messages", messages, methods=["POST"]), Route("/healthz", healthz)])

    # --- callbacks to the bank ---------------------------------------------------------------------------------

    def _post(self, url: str, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **signed_headers(self.secret, body, datetime.now(UTC))}
        return httpx.post(url, content=body, headers=headers, timeout=10)

    def post_receipts(self, batch: int = 500) -> list[httpx.Response]:
        """Post the receipts waiting so far to the bank, in batches; the bank's answers."""
        with self._lock:
            waiting, self.pending_receipts = self.pending_receipts, []
        if not self.receipts_url:
            return []
        return [self._post(self.receipts_url, {"receipts": waiting[i:i + batch]})
                for i in range(0, len(waiting), batch)]

    def reply(self, key: str, text: str) -> httpx.Response:
        """The customer who received message `key` replies `text` (e.g. "T" or "退订")."""
        if not self.replies_url:
            raise RuntimeError("no replies_url set")
        found = self.accepted.get(key)
        return self._post(self.replies_url, {"id": key, "from": found.to if found else "", "text": text})

    # --- life ------------------------------------------------------------------------------------------------

    def start(self) -> GatewayDouble:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway double did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GatewayDouble:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
