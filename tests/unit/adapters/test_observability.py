"""The server's side of the metrics port: what the modules report lands in the Prometheus series with small,
fixed labels; a request's id is the caller's when it is sane; requests are labelled by route template."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from microlend.api.observability import UNMATCHED, PrometheusSink, request_id_of, route_template
from microlend.core import metrics
from microlend.origination.events import ApplicationDecided


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def sink() -> Iterator[None]:
    before = metrics.installed()
    metrics.install(PrometheusSink())
    yield
    metrics.install(before)


def decided(status: str, automatic: bool) -> ApplicationDecided:
    return ApplicationDecided(1, 10, 20, status, automatic, None, datetime(2026, 1, 5, tzinfo=UTC), Decimal("5000"))


def test_decisions_are_counted_by_outcome_and_who_decided(sink: None) -> None:
    auto = value("microlend_decisions_total", outcome="declined", automatic="true")
    people = value("microlend_decisions_total", outcome="approved", automatic="false")
    metrics.events_committed([decided("declined", True), decided("approved", False), decided("declined", True)])
    assert value("microlend_decisions_total", outcome="declined", automatic="true") == auto + 2
    assert value("microlend_decisions_total", outcome="approved", automatic="false") == people + 1


def test_jobs_and_providers_land_in_their_series(sink: None) -> None:
    runs = value("microlend_job_duration_seconds_count", job="close_of_business")
    failures = value("microlend_job_failures_total", job="marketing_dispatch")
    errors = value("microlend_provider_errors_total", provider="credit_bureau", error="TimeoutError")
    metrics.job_ran(metrics.CLOSE_OF_BUSINESS, 2.5)
    metrics.job_failed(metrics.MARKETING_DISPATCH, 3)
    with pytest.raises(TimeoutError), metrics.provider_call("credit_bureau"):
        raise TimeoutError("no answer")
    assert value("microlend_job_duration_seconds_count", job="close_of_business") == runs + 1
    assert value("microlend_job_last_success_timestamp_seconds", job="close_of_business") > 0
    assert value("microlend_job_failures_total", job="marketing_dispatch") == failures + 3
    assert value("microlend_provider_errors_total", provider="credit_bureau", error="TimeoutError") == errors + 1


@pytest.mark.parametrize("given, kept", [
    ("abc-123", True), ("lb:4711.a_b", True), ("x" * 128, True), ("x" * 129, False), ("has space", False),
    ("", False), ("-leading-dash", False), ("ünicode", False),
])
def test_a_request_id_is_the_callers_only_when_sane(given: str, kept: bool) -> None:
    rid = request_id_of({"headers": [(b"x-request-id", given.encode("utf-8"))]})
    assert (rid == given) is kept
    if not kept:
        assert len(rid) == 32 and rid.isalnum()


def test_an_unmatched_request_is_labelled_without_its_path() -> None:
    assert route_template({"path": "/api/v1/customers/13812345678"}) == UNMATCHED
