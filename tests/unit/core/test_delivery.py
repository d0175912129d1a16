"""The HTTP gateway adapter against its test double over real HTTP, the throttle on a fake clock, signing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from microlend.core import delivery
from microlend.core.delivery import GatewayConfig, GatewayMessage, HttpGateway, Throttle
from microlend.core.errors import ValidationError
from microlend.demo.message_gateway import GatewayDouble

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble(api_key="k-123456789", secret="s-abcdefghij") as server:
        yield server


@pytest.fixture
def gateway(double: GatewayDouble) -> Iterator[HttpGateway]:
    double.fail_next = double.throttle_next = 0
    double.reject_to.clear()
    g = HttpGateway(GatewayConfig("sms", double.base_url, "k-123456789", "s-abcdefghij", batch_size=3))
    yield g
    g.close()


def _messages(prefix: str, n: int) -> list[GatewayMessage]:
    return [GatewayMessage(f"{prefix}-{i}", f"1380000{i:04d}", f"hello {i}") for i in range(n)]


class TestHttpGateway:
    def test_every_message_of_several_batches_is_accepted_with_the_gateway_id(
            self, gateway: HttpGateway, double: GatewayDouble) -> None:
        before = double.requests
        results = gateway.send(_messages("a", 7))
        assert [r.accepted for r in results] == [True] * 7
        assert [r.key for r in results] == [f"a-{i}" for i in range(7)]
        assert len({r.gateway_id for r in results}) == 7
        assert double.requests - before == 3  # batches of 3
        assert double.accepted["a-4"].text == "hello 4"

    def test_the_same_key_twice_is_sent_once(self, gateway: HttpGateway, double: GatewayDouble) -> None:
        first = gateway.send(_messages("dup", 1))[0]
        dupes = double.duplicates
        again = gateway.send(_messages("dup", 1))[0]
        assert again.gateway_id == first.gateway_id and double.duplicates == dupes + 1

    @pytest.mark.parametrize("fault", ["fail_next", "throttle_next"])
    def test_a_busy_or_failing_gateway_is_worth_another_try(self, gateway: HttpGateway, double: GatewayDouble,
                                                            fault: str) -> None:
        setattr(double, fault, 1)
        results = gateway.send(_messages(f"busy-{fault}", 2))
        assert all(not r.accepted and r.retryable for r in results)
        assert all(r.accepted for r in gateway.send(_messages(f"busy-{fault}", 2)))

    def test_a_refused_address_is_final(self, gateway: HttpGateway, double: GatewayDouble) -> None:
        double.reject_to.add("13800000001")
        results = gateway.send(_messages("rej", 2))
        assert results[0].accepted and not results[1].accepted and not results[1].retryable

    def test_a_wrong_key_is_refused_for_good(self, double: GatewayDouble) -> None:
        g = HttpGateway(GatewayConfig("sms", double.base_url, "wrong-key-000", "s-abcdefghij"))
        result = g.send(_messages("wk", 1))[0]
        assert not result.accepted and not result.retryable and "401" in result.error

    def test_an_unreachable_gateway_is_worth_another_try(self) -> None:
        g = HttpGateway(GatewayConfig("sms", "http://127.0.0.1:9", "k", "s", timeout_s=0.5))
        result = g.send(_messages("down", 1))[0]
        assert not result.accepted and result.retryable

    def test_send_one_raises_with_the_reason(self, gateway: HttpGateway, double: GatewayDouble) -> None:
        double.reject_to.add("13800000000")
        with pytest.raises(delivery.DeliveryFailed) as info:
            gateway.send_one("13800000000", "hi", key="one-1")
        assert not info.value.retryable


class TestConfig:
    def test_credentials_never_show_in_clear(self) -> None:
        c = GatewayConfig("push", "https://push.example.com/v1/", "sk-live-1234567890", "whsec-0987654321")
        assert c.url == "https://push.example.com/v1"
        assert "1234567890" not in repr(c) and "0987654321" not in repr(c)
        assert c.masked()["api_key"] == "sk********90" and c.masked()["secret"] == "wh********21"
        assert "1234567890" not in repr(HttpGateway(c))

    @pytest.mark.parametrize("kwargs", [{"channel": "fax"}, {"url": "ftp://x"}, {"batch_size": 0},
                                        {"throttle_per_s": 0}, {"timeout_s": 100}])
    def test_a_bad_setting_is_refused(self, kwargs: dict[str, object]) -> None:
        values: dict[str, object] = {"channel": "sms", "url": "https://sms.example.com", **kwargs}
        with pytest.raises(ValidationError):
            GatewayConfig(**values)  # type: ignore[arg-type]


class TestSigning:
    def test_a_signature_checks_only_for_its_body_secret_and_a_recent_time(self) -> None:
        body = b'{"receipts": []}'
        h = delivery.signed_headers("secret-1", body, NOW)
        ts, sig = h[delivery.TIMESTAMP_HEADER], h[delivery.SIGNATURE_HEADER]
        assert delivery.verify("secret-1", body, ts, sig, now=NOW)
        assert not delivery.verify("secret-2", body, ts, sig, now=NOW)
        assert not delivery.verify("secret-1", body + b" ", ts, sig, now=NOW)
        assert not delivery.verify("secret-1", body, ts, sig, now=NOW + timedelta(minutes=6))
        assert not delivery.verify("", body, ts, sig, now=NOW)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class TestThrottle:
    def test_a_day_of_messages_takes_the_time_the_rate_allows(self) -> None:
        clock = FakeClock()
        throttle = Throttle(100, clock=clock, sleep=clock.sleep)
        for _ in range(50):
            throttle.acquire(20)  # 1,000 messages at 100 a second
        assert clock.t == pytest.approx(9.0)  # the first second's burst is free

    def test_no_wait_under_the_rate(self) -> None:
        clock = FakeClock()
        throttle = Throttle(10, clock=clock, sleep=clock.sleep)
        assert throttle.acquire(5) == 0
        clock.t += 1
        assert throttle.acquire(10) == 0


def test_retries_wait_longer_each_time_up_to_a_limit() -> None:
    waits = [delivery.retry_at(n, NOW) - NOW for n in range(1, 12)]
    assert waits[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(waits) == delivery.LONGEST_WAIT and waits == sorted(waits)


@pytest.mark.parametrize(("host", "link"), [("https://www.bank.cn", "https://www.bank.cn/t/abc"),
                                            ("www.bank.cn", "https://www.bank.cn/t/abc"), ("", "/t/abc")])
def test_links_are_absolute_on_the_banks_host(host: str, link: str) -> None:
    assert delivery.absolute_link(delivery.check_public_host(host), "/t/abc") == link


@pytest.mark.parametrize("host", ["https://bank.cn/path", "ftp://bank.cn", "https://u:p@bank.cn"])
def test_a_public_host_with_more_than_an_address_is_refused(host: str) -> None:
    with pytest.raises(ValidationError):
        delivery.check_public_host(host)
