"""The provider gateway (数据网关): one call gathers what the six external providers know about a subject.

`Gateway.fetch` reads the bank's provider settings, leaves out every kind whose consent is missing
(`no_consent`) or that the bank has not set up (`not_configured`), answers repeats from an in-process TTL
cache, skips a provider whose circuit breaker is open, and calls the rest in parallel over HTTP (httpx, a
thread each) with the kind's timeout and retries (with backoff, on 5xx, timeouts and refused connections
only). Each answer is checked against its data contract (`data.providers`). Only then does it write one call
row per kind asked for, in the caller's unit of work: no database transaction waits on a provider. A provider
failing never raises: it is a status (`unavailable`, `data_error` ...) in the result.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

import httpx
from sqlalchemy import select, update

from microlend.core import crypto
from microlend.core.clock import get_clock, utcnow
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data import answer_facts
from microlend.data.profile import SourceSnapshot
from microlend.data.providers import KINDS, PATHS, SUBJECT_KINDS, ProviderDataError, ProviderRecord, parse
from microlend.data.providers.kinds import consent_missing
from microlend.data.tables import ProviderCallRow, ProviderSettingsRow
from microlend.parties.kyc import validate_resident_id, validate_uscc


class CallStatus(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"  # the provider does not know the subject ("found": false)
    UNAVAILABLE = "unavailable"  # timeout, 5xx, refused connection, refused key, breaker open
    DATA_ERROR = "data_error"  # the answer breaks its data contract
    NO_CONSENT = "no_consent"  # the kind's consent scope is missing: not called
    NOT_CONFIGURED = "not_configured"  # the bank has no (enabled) settings for the kind: not called


@dataclass(frozen=True)
class ProviderConfig:
    """A kind's settings as the gateway uses them (the API key decrypted, in memory only)."""

    kind: str
    base_url: str
    api_key: str | None
    timeout_ms: int
    retries: int
    breaker_failures: int
    breaker_seconds: int
    cache_ttl_seconds: int
    cost_per_call: Decimal
    currency: str
    enabled: bool = True


@dataclass(frozen=True)
class ProviderResult:
    """What one kind gave: the record when `ok`, why not otherwise; `cost` is what this call is billed."""

    kind: str
    status: CallStatus
    record: ProviderRecord | None = None
    latency_ms: int = 0
    cost: Decimal = Decimal(0)
    currency: str = ""
    cached: bool = False
    http_status: int | None = None
    error: str | None = None
    call_id: int | None = None
    payload: str | None = None  # the answer as sent, when it kept its contract (ok, not_found)


@dataclass(frozen=True)
class GatheredData:
    """All kinds asked for about one subject, as of one day (None: the providers' today)."""

    subject_kind: str
    as_of: date | None
    results: Mapping[str, ProviderResult]

    def record(self, kind: str) -> ProviderRecord | None:
        result = self.results.get(kind)
        return result.record if result is not None and result.status is CallStatus.OK else None

    @property
    def cost(self) -> Decimal:
        return sum((r.cost for r in self.results.values()), Decimal(0))

    def payloads(self) -> dict[str, dict[str, Any]]:
        """The answers that kept their contract, as parsed JSON by kind (what `data.business` takes)."""
        out: dict[str, dict[str, Any]] = {}
        for kind, r in self.results.items():
            if r.payload is not None and r.status in (CallStatus.OK, CallStatus.NOT_FOUND):
                out[kind] = json.loads(r.payload)
        return out


@dataclass(frozen=True)
class _Answer:
    """What came back over HTTP (or why nothing did), before it is recorded."""

    status: CallStatus
    record: ProviderRecord | None = None
    http_status: int | None = None
    error: str | None = None
    text: str | None = None
    latency_ms: int = 0
    billed: bool = False


# --- circuit breaker and cache (a clock passed in: tests move it) ------------------------------------------


class CircuitBreaker:
    """Opens after `failures` consecutive failures, for `seconds`; then lets one trial call through
    (half-open): a success closes it, a failure opens it again."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None
        self._trial = False

    def allow(self) -> bool:
        with self._lock:
            if self._open_until is None:
                return True
            if self._now() < self._open_until or self._trial:
                return False
            self._trial = True  # half-open: this caller is the trial
            return True

    def success(self) -> None:
        with self._lock:
            self._failures, self._open_until, self._trial = 0, None, False

    def failure(self, threshold: int, seconds: int) -> None:
        with self._lock:
            self._failures += 1
            if self._trial or self._failures >= threshold:
                self._open_until = self._now() + seconds
                self._trial = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open_until is not None and (self._now() < self._open_until or self._trial)

    def seconds_left(self) -> float:
        with self._lock:
            return 0.0 if self._open_until is None else max(0.0, self._open_until - self._now())


@dataclass(frozen=True)
class _Cached:
    status: CallStatus
    record: ProviderRecord | None
    text: str
    expires: float


class TTLCache:
    """Answers kept for a while, at most `max_entries` (the least recently used leave first). The gateway keys
    them by bank, kind, provider address, subject and day: a new address asks afresh."""

    def __init__(self, now: Callable[[], float], max_entries: int = 10_000) -> None:
        self._now = now
        self._max = max_entries
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[object, ...], _Cached] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> _Cached | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item.expires <= self._now():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item

    def put(
        self, key: tuple[object, ...], status: CallStatus, record: ProviderRecord | None, text: str, ttl_seconds: int
    ) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            self._items[key] = _Cached(status, record, text, self._now() + ttl_seconds)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# --- the gateway --------------------------------------------------------------------------------------------

#: Seconds before retry n (1-based): 0.05, 0.1, 0.2 ... at most 1 s, with up to 20 % jitter.
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 1.0
#: The most of an answer the gateway reads (a merchant's 180 days are some 15 KB).
MAX_ANSWER_BYTES = 2 * 1024 * 1024


class Gateway:
    """One per process: it keeps the HTTP connections, the breakers and the cache across requests.
    `now` is a monotonic clock in seconds and `sleep` the pause between retries (tests pass fakes)."""

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        max_workers: int = 16,
    ) -> None:
        self._now = now
        self._sleep = sleep
        self.cache = TTLCache(now)
        self._breakers: dict[tuple[object, ...], CircuitBreaker] = {}
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self._http = httpx.Client(transport=transport, limits=limits, follow_redirects=False, trust_env=False)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="provider")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def breaker(self, tenant_id: int, kind: str, base_url: str) -> CircuitBreaker:
        key = (tenant_id, kind, base_url)
        with self._lock:
            if key not in self._breakers:
                self._breakers[key] = CircuitBreaker(self._now)
            return self._breakers[key]

    def fetch(
        self,
        uow: UnitOfWork,
        who: Principal,
        subject_id: str,
        subject_kind: str,
        kinds: Sequence[str],
        *,
        consents: Collection[str],
        purpose: str,
        application_id: int | None = None,
        as_of: date | None = None,
    ) -> GatheredData:
        """Gather `kinds` about the subject (a resident ID for a person, a USCC for a business) for `purpose`;
        one call row per kind is written in `uow` (committed here unless the caller holds `uow` open, then
        with the caller's commit)."""
        if not (who.can(Permission.DECIDE) or who.can(Permission.APPLY)):
            who.require(Permission.DECIDE)
        subject = _subject(subject_id, subject_kind)
        wanted = _kinds(kinds)
        purpose = purpose.strip()
        if not 1 <= len(purpose) <= 200:
            raise ValidationError("purpose: say why the data is fetched (1 to 200 characters)", field="purpose")
        with uow.read_only():
            configs = _configs(uow, who.tenant_id)
        today = get_clock().today()
        answers: dict[str, ProviderResult] = {}
        pending: dict[str, tuple[ProviderConfig, CircuitBreaker, tuple[object, ...]]] = {}
        texts: dict[str, str | None] = {}
        for kind in wanted:
            config = configs.get(kind)
            currency = config.currency if config else ""
            missing = consent_missing(kind, consents)
            if missing is not None:
                answers[kind] = ProviderResult(
                    kind, CallStatus.NO_CONSENT, currency=currency, error=f"no '{missing}' consent from the subject"
                )
                continue
            if subject_kind not in SUBJECT_KINDS[kind]:
                answers[kind] = ProviderResult(
                    kind,
                    CallStatus.NOT_FOUND,
                    currency=currency,
                    error=f"{kind} knows only a {' or '.join(sorted(SUBJECT_KINDS[kind]))}",
                )
                continue
            if config is None or not config.enabled:
                answers[kind] = ProviderResult(
                    kind,
                    CallStatus.NOT_CONFIGURED,
                    currency=currency,
                    error="no provider set up" if config is None else "provider disabled",
                )
                continue
            key = (who.tenant_id, kind, config.base_url, subject, (as_of or today).isoformat())
            hit = self.cache.get(key)
            if hit is not None:
                answers[kind] = ProviderResult(
                    kind, hit.status, hit.record, currency=currency, cached=True, http_status=200
                )
                texts[kind] = hit.text
                continue
            breaker = self.breaker(who.tenant_id, kind, config.base_url)
            if not breaker.allow():
                answers[kind] = ProviderResult(
                    kind,
                    CallStatus.UNAVAILABLE,
                    currency=currency,
                    error=f"circuit open after repeated failures; retried in {breaker.seconds_left():.0f} s",
                )
                continue
            pending[kind] = (config, breaker, key)
        futures = {
            kind: self._pool.submit(self._call, config, breaker, subject, as_of)
            for kind, (config, breaker, _) in pending.items()
        }
        for kind, future in futures.items():
            config, _, cache_key = pending[kind]
            answer = future.result()
            if answer.status in (CallStatus.OK, CallStatus.NOT_FOUND) and answer.text is not None:
                self.cache.put(cache_key, answer.status, answer.record, answer.text, config.cache_ttl_seconds)
            answers[kind] = ProviderResult(
                kind,
                answer.status,
                answer.record,
                latency_ms=answer.latency_ms,
                cost=config.cost_per_call if answer.billed else Decimal(0),
                currency=config.currency,
                http_status=answer.http_status,
                error=answer.error,
            )
            texts[kind] = answer.text
        ordered = {kind: answers[kind] for kind in wanted}
        recorded = _record(uow, who, subject, subject_kind, as_of, purpose, application_id, ordered, texts)
        return GatheredData(subject_kind, as_of, recorded)

    def _call(self, config: ProviderConfig, breaker: CircuitBreaker, subject: str, as_of: date | None) -> _Answer:
        """One kind over HTTP with its retries; never raises."""
        started = time.perf_counter()
        answer = self._attempts(config, subject, as_of)
        latency = round((time.perf_counter() - started) * 1000)
        if answer.status is CallStatus.UNAVAILABLE and answer.http_status in (None, *range(500, 600)):
            breaker.failure(config.breaker_failures, config.breaker_seconds)
        else:  # the provider answered (a refusal too): it is up, and a half-open breaker closes
            breaker.success()
        return _Answer(
            answer.status, answer.record, answer.http_status, answer.error, answer.text, latency, answer.billed
        )

    def _attempts(self, config: ProviderConfig, subject: str, as_of: date | None) -> _Answer:
        url = config.base_url.rstrip("/") + PATHS[config.kind]
        params = {"subject": subject} | ({"as_of": as_of.isoformat()} if as_of else {})
        headers = {"Authorization": f"Bearer {config.api_key or ''}", "Accept": "application/json"}
        timeout = httpx.Timeout(config.timeout_ms / 1000)
        answer = _Answer(CallStatus.UNAVAILABLE, error="not called")
        for attempt in range(config.retries + 1):
            if attempt:
                pause = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
                self._sleep(pause * (1 + random.random() / 5))
            answer = self._once(config.kind, url, params, headers, timeout, subject)
            retry = answer.status is CallStatus.UNAVAILABLE and (
                answer.http_status is None or 500 <= answer.http_status < 600
            )
            if not retry:
                break
        return answer

    def _once(
        self, kind: str, url: str, params: dict[str, str], headers: dict[str, str], timeout: httpx.Timeout, subject: str
    ) -> _Answer:
        try:
            response = self._http.get(url, params=params, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return _Answer(CallStatus.UNAVAILABLE, error=f"no answer within {timeout.read or 0:.3g} s")
        except httpx.HTTPError as exc:
            return _Answer(CallStatus.UNAVAILABLE, error=f"cannot reach the provider: {type(exc).__name__}")
        status = response.status_code
        if status != 200:
            why = {401: "the provider refused the API key", 403: "the provider refused the API key"}.get(
                status, "the provider failed" if status >= 500 else "the provider refused the request"
            )
            return _Answer(CallStatus.UNAVAILABLE, http_status=status, error=f"{why} (HTTP {status})")
        if len(response.content) > MAX_ANSWER_BYTES:
            return _Answer(
                CallStatus.DATA_ERROR,
                http_status=status,
                billed=True,
                error=f"{kind}: payload: larger than {MAX_ANSWER_BYTES} bytes",
            )
        text = response.content.decode("utf-8", errors="replace")
        try:
            record = parse(kind, text, subject=subject)
        except ProviderDataError as exc:
            return _Answer(CallStatus.DATA_ERROR, http_status=status, error=exc.message, text=text, billed=True)
        if record is None:
            return _Answer(CallStatus.NOT_FOUND, http_status=status, text=text, billed=True)
        return _Answer(CallStatus.OK, record, http_status=status, text=text, billed=True)


@lru_cache(maxsize=1)
def default_gateway() -> Gateway:
    """The process's gateway (its connections, breakers and cache are shared by every request)."""
    return Gateway()


def _subject(subject_id: str, subject_kind: str) -> str:
    if subject_kind == "person":
        return validate_resident_id(subject_id, field="subject_id")
    if subject_kind == "business":
        return validate_uscc(subject_id, field="subject_id")
    raise ValidationError("subject_kind: must be 'person' or 'business'", field="subject_kind")


def _kinds(kinds: Sequence[str]) -> list[str]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValidationError(f"kinds: unknown provider kind '{unknown[0]}' (one of {', '.join(KINDS)})", field="kinds")
    if not kinds:
        raise ValidationError("kinds: name at least one provider kind", field="kinds")
    return list(dict.fromkeys(kinds))


def config_of(row: ProviderSettingsRow) -> ProviderConfig:
    return ProviderConfig(
        kind=row.kind,
        base_url=row.base_url,
        api_key=crypto.decrypt(row.api_key) if row.api_key else None,
        timeout_ms=row.timeout_ms,
        retries=row.retries,
        breaker_failures=row.breaker_failures,
        breaker_seconds=row.breaker_seconds,
        cache_ttl_seconds=row.cache_ttl_seconds,
        cost_per_call=row.cost_per_call,
        currency=row.currency,
        enabled=row.enabled,
    )


def _configs(uow: UnitOfWork, tenant_id: int) -> dict[str, ProviderConfig]:
    rows = uow.session.execute(select(ProviderSettingsRow).where(ProviderSettingsRow.tenant_id == tenant_id))
    return {row.kind: config_of(row) for row in rows.scalars()}


def _record(
    uow: UnitOfWork,
    who: Principal,
    subject: str,
    subject_kind: str,
    as_of: date | None,
    purpose: str,
    application_id: int | None,
    results: dict[str, ProviderResult],
    texts: Mapping[str, str | None],
) -> dict[str, ProviderResult]:
    """One call row per kind, then the results with their call ids."""
    index, masked, at = crypto.blind_index(subject), crypto.mask(subject), utcnow()
    rows: dict[str, ProviderCallRow] = {}
    for kind, r in results.items():
        text = texts.get(kind)
        rows[kind] = ProviderCallRow(
            tenant_id=who.tenant_id,
            kind=kind,
            subject_index=index,
            subject_masked=masked,
            subject_kind=subject_kind,
            as_of=as_of,
            purpose=purpose,
            application_id=application_id,
            called_by=who.username,
            at=at,
            status=r.status.value,
            latency_ms=r.latency_ms,
            cost=r.cost,
            currency=r.currency,
            cached=r.cached,
            http_status=r.http_status,
            error=None if r.error is None else r.error[:2000],
            payload=None if text is None else crypto.encrypt(text),
            payload_sha256=None if text is None else hashlib.sha256(text.encode()).hexdigest(),
        )
    with uow:
        uow.session.add_all(rows.values())
        uow.session.flush()
        for kind, row in rows.items():  # what whole-book jobs read of the answer, extracted once now
            text = texts.get(kind)
            facts = None if text is None else answer_facts.row_of(row, text)
            if facts is not None:
                uow.session.add(facts)
        recorded = {kind: _with_id(r, rows[kind].id, texts.get(kind)) for kind, r in results.items()}
        uow.commit()
    return recorded


def _with_id(result: ProviderResult, call_id: int, text: str | None) -> ProviderResult:
    kept = result.status in (CallStatus.OK, CallStatus.NOT_FOUND)
    return replace(result, call_id=call_id, payload=text if kept else None)


@dataclass(frozen=True)
class Payload:
    """A recorded answer as the provider sent it (personal data masked for callers who may not see it)."""

    call_id: int
    kind: str
    text: str
    sha256: str
    masked: bool = field(default=False)


def payload_of(uow: UnitOfWork, who: Principal, call_id: int) -> Payload:
    """The raw answer a call recorded, to replay a decision or settle a dispute. Staff who see personal data
    get it as sent; data-source reviewers and auditors get ID numbers and mobiles masked."""
    if not (who.can(Permission.VIEW_PERSONAL_DATA) or who.can(Permission.VIEW_DATA_SOURCES)):
        who.require(Permission.VIEW_DATA_SOURCES)
    with uow.read_only():
        row = uow.session.get(ProviderCallRow, call_id)
        if row is None or row.tenant_id != who.tenant_id:
            raise NotFound(f"provider call {call_id} not found")
        if row.payload is None or row.payload_sha256 is None:
            raise NotFound(f"provider call {call_id} has no answer recorded ({row.status})")
        text = crypto.decrypt(row.payload)
        if hashlib.sha256(text.encode()).hexdigest() != row.payload_sha256:
            raise ValidationError(f"provider call {call_id}: the recorded answer does not match its SHA-256")
        if who.can(Permission.VIEW_PERSONAL_DATA):
            return Payload(call_id, row.kind, text, row.payload_sha256)
        return Payload(call_id, row.kind, crypto.redact(text), row.payload_sha256, masked=True)


def link_calls(uow: UnitOfWork, who: Principal, call_ids: Collection[int], application_id: int) -> int:
    """Tie calls made before an application had its id to that application (inside the caller's unit of work);
    only calls of the caller's bank that belong to no application yet. Returns how many were tied."""
    if not call_ids:
        return 0
    with uow:
        linked = uow.session.connection().execute(
            update(ProviderCallRow)
            .where(ProviderCallRow.tenant_id == who.tenant_id, ProviderCallRow.id.in_(list(call_ids)),
                   ProviderCallRow.application_id.is_(None))
            .values(application_id=application_id))
        uow.commit()
    return linked.rowcount


#: Statuses that say something about the subject (a call skipped for want of consent or set-up says nothing).
_ANSWERED = (CallStatus.OK.value, CallStatus.NOT_FOUND.value, CallStatus.UNAVAILABLE.value,
             CallStatus.DATA_ERROR.value)


def latest_snapshots(uow: UnitOfWork, who: Principal, subject_id: str) -> dict[str, SourceSnapshot]:
    """The newest recorded answer of each source about a subject (for the officer's business profile): a
    source that failed last shows that, with the newest good answer's content if there was one before."""
    who.require(Permission.VIEW_CUSTOMERS)
    index = crypto.blind_index(subject_id)
    out: dict[str, SourceSnapshot] = {}
    with uow.read_only():
        rows = uow.session.execute(
            select(ProviderCallRow.kind, ProviderCallRow.status, ProviderCallRow.at, ProviderCallRow.payload)
            .where(ProviderCallRow.tenant_id == who.tenant_id, ProviderCallRow.subject_index == index,
                   ProviderCallRow.status.in_(_ANSWERED))
            .order_by(ProviderCallRow.at.desc(), ProviderCallRow.id.desc())
            .limit(200)).all()
    for kind, status, at, sealed in rows:
        newest = out.get(kind)
        kept = sealed is not None and status in (CallStatus.OK.value, CallStatus.NOT_FOUND.value)
        if newest is not None and (newest.payload is not None or not kept):
            continue
        payload = json.loads(crypto.decrypt(sealed)) if kept and sealed is not None else None
        out[kind] = SourceSnapshot(kind, status, at, payload) if newest is None else replace(newest, payload=payload)
    return out
