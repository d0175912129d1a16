"""The sandbox in the caller's own process, as an httpx transport: the gateway's client sends its requests
through it and the sandbox answers them without a socket, a server or a second process — the same checks, faults
and payloads as over HTTP (`app.Sandbox`), waiting only as long as `latency_ms` asks.

The demo lives its history through it: what the bank records of each call is what the sandbox process would
have answered, minus the loopback round trip and the process's event loop."""

from __future__ import annotations

import time

import httpx

from microlend.demo.sandbox.app import Call, Sandbox, SandboxOptions
from microlend.demo.sandbox.providers import KINDS, PATHS

#: The address the bank's providers are set to while they are answered in process (nothing listens there).
IN_PROCESS_URL = "http://sandbox.invalid"


class SandboxTransport(httpx.BaseTransport):
    """Answers `/v1/<kind>/<what>` and `/healthz` of any host from a `Sandbox` with these options."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.sandbox = Sandbox(options)
        self._kinds = {f"/v1/{kind}/{PATHS[kind]}": kind for kind in KINDS}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method != "GET":
            return httpx.Response(405, json={"error": "method_not_allowed", "message": "only GET is served"})
        if path == "/healthz":
            return httpx.Response(200, json=self.sandbox.health())
        kind = self._kinds.get(path)
        if kind is None:
            return httpx.Response(404, json={"error": "not_found", "message": f"no provider at {path}"})
        call = self.sandbox.admit(kind, request.headers, request.url.params)
        if not isinstance(call, Call):
            answer = call
        else:
            wait, late = self.sandbox.latency_s(), False
            if call.fault == "timeout":  # the answer comes after timeout_s, unless the client gives up first
                limit = (request.extensions.get("timeout") or {}).get("read")
                wait += self.sandbox.options.timeout_s
                if limit is not None and float(limit) < wait:
                    wait, late = float(limit), True
            if wait > 0:
                time.sleep(wait)
            if late:
                raise httpx.ReadTimeout("the sandbox did not answer in time", request=request)
            answer = self.sandbox.answer(kind, call)
        return httpx.Response(answer.status_code, headers=answer.raw_headers, content=bytes(answer.body),
                              request=request)
