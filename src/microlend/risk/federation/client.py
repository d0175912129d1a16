"""The bank's side of the wire: signs every message with the partnership key, checks the partner's signed
answer (bound to the request's nonce), and records both in the bank's transcript. A `deadline` bounds the whole
exchange (a training run): each request waits at most for what is left of it, and once it has passed the run
stops with a clear error instead of waiting on a partner that has hung."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import httpx

from microlend.core.errors import ValidationError
from microlend.risk.federation.keys import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    FederationError,
    NotAuthenticated,
    PartnershipKey,
    Transcript,
    fresh_headers,
    request_signature,
    response_signature,
)


class PartnerClient:
    def __init__(self, url: str, key: PartnershipKey, transcript: Transcript | None = None, *,
                 timeout: float = 600.0, deadline: float | None = None) -> None:
        """`timeout`: seconds one request may wait; `deadline`: seconds all of them may take from now (None: no
        bound beyond each request's timeout)."""
        if not url.startswith(("http://", "https://")):
            raise FederationError(f"partner: '{url}' is not an http(s) URL")
        if deadline is not None and not deadline > 0:
            raise ValidationError("deadline: must be a positive number of seconds", field="deadline")
        self.url = url.rstrip("/")
        self.key = key
        self.transcript = transcript
        self.timeout = timeout
        self.deadline = deadline
        self._ends = None if deadline is None else time.monotonic() + deadline
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PartnerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        # the server's module (and the federation extra's Paillier and PSI under it) loads when a partner is
        # called, not when scoring imports this client: the demo installs the package without the extra
        from microlend.risk.federation.server import PREFIX

        body = json.dumps(payload, separators=(",", ":")).encode()
        path = PREFIX + message_type
        ts, nonce = fresh_headers()
        headers = {HEADER_TIMESTAMP: ts, HEADER_NONCE: nonce, "Content-Type": "application/json",
                   HEADER_SIGNATURE: request_signature(self.key, path, ts, nonce, body)}
        timeout = self.timeout
        if self._ends is not None:
            left = self._ends - time.monotonic()
            if left <= 0:
                raise self._passed(message_type, "before it was sent")
            timeout = min(timeout, left)
        if self.transcript is not None:
            self.transcript.record("out", message_type, body)
        try:
            response = self._http.post(self.url + path, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException) and self._ends is not None and \
                    time.monotonic() >= self._ends - 0.01:
                raise self._passed(message_type, "unanswered") from None
            raise FederationError(f"partner: {self.url} is not reachable ({type(exc).__name__}: {exc})") from None
        detail = _detail(response)
        if response.status_code == 401:
            raise NotAuthenticated(f"partner refused the message: {detail}")
        signature = response.headers.get(HEADER_SIGNATURE, "")
        expected = response_signature(self.key, nonce, response.status_code, response.headers.get(HEADER_TIMESTAMP, ""),
                                      response.headers.get(HEADER_NONCE, ""), response.content)
        if not signature or not hmac.compare_digest(signature, expected):
            raise NotAuthenticated("federation: the partner's answer is not signed with this partnership's key "
                                   f"(status {response.status_code}): refused")
        if self.transcript is not None:
            self.transcript.record("in", message_type, response.content)
        if response.status_code != 200:
            raise FederationError(f"partner answered {response.status_code} to {message_type}: {detail}")
        data = response.json()
        if not isinstance(data, dict):
            raise FederationError(f"partner: the answer to {message_type} is not a JSON object")
        return data


    def _passed(self, message_type: str, state: str) -> DeadlinePassed:
        assert self.deadline is not None
        return DeadlinePassed(f"partner: the exchange with {self.url} passed its deadline of {self.deadline:g} s "
                              f"({message_type} {state}); the run stops and writes no model")


class DeadlinePassed(FederationError):
    """The whole exchange with the partner took longer than its deadline."""


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("detail", data)) if isinstance(data, dict) else str(data)[:200]
