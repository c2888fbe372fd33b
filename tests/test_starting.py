"""Failover (flows/start.py): a start goes to the next provider only when the failure proves no call was set up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from django_callauth.models import CallAuthFlow
from django_callauth.providers import balances
from django_callauth.providers.base import ProviderBalance
from tests.fake_sms_ru import FakeSmsRu
from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import PHONE, BrokenCache, Clock, SignalLog, assert_json_error, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def both(settings: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu) -> Any:
    """telefon-ip first, sms.ru next, each on its loopback fake; check mode."""
    settings.CALLAUTH_PROVIDER = ["telefon_ip", "sms_ru"]
    settings.CALLAUTH_TELEFON_IP_TOKEN = fake_telefon_ip.token
    settings.CALLAUTH_TELEFON_IP_URL = fake_telefon_ip.base_url
    settings.CALLAUTH_SMS_RU_API_ID = fake_sms_ru.api_id
    settings.CALLAUTH_SMS_RU_URL = fake_sms_ru.base_url
    settings.CALLAUTH_WEBHOOK_BASE_URL = ""
    del settings.CALLAUTH_TTL  # each provider's own lifetime
    return settings


def test_a_dead_provider_fails_over_to_the_next(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu, sent: SignalLog
) -> None:
    fake_telefon_ip.stop()  # connection refused: the request never left
    response = start(client)
    assert response.status_code == 201, response.content
    assert response.json()["call_to"].startswith("+7800")
    flow = CallAuthFlow.objects.get()
    assert (flow.provider, flow.status, flow.call_to) == ("sms_ru", "pending", response.json()["call_to"])
    assert flow.first_provider == "telefon_ip"  # the dashboard counts it as a failover
    assert 295 <= response.json()["expires_in"] <= 300  # sms.ru's numbers live 5 minutes
    [failover] = [e.kwargs for e in sent.of("failed_over")]
    assert (failover["flow"], failover["failed"], failover["provider"]) == (flow, "telefon_ip", "sms_ru")
    assert failover["error"].no_call_set_up and failover["request"] is not None


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, "busy"), (429, ""), (401, '{"success": false, "error": "token"}')],
    ids=["unavailable", "rate-limited", "token-refused"],
)
def test_an_explicit_refusal_fails_over(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu, status: int, body: str
) -> None:
    fake_telefon_ip.fail_next(status, body)
    assert start(client).status_code == 201
    assert CallAuthFlow.objects.get().provider == "sms_ru"
    assert [r.action for r in fake_sms_ru.requests] == ["callcheck/add"]


def test_a_provider_without_its_settings_fails_over_without_a_request(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp
) -> None:
    both.CALLAUTH_TELEFON_IP_TOKEN = ""
    assert start(client).status_code == 201
    assert fake_telefon_ip.requests == []
    assert CallAuthFlow.objects.get().provider == "sms_ru"


@pytest.mark.parametrize(
    ("status", "body", "delay", "code", "http_status"),
    [
        (500, "oops", 0, "provider_unavailable", 503),  # may have set up a call before failing
        (200, "not json", 0, "provider_error", 502),
        (200, '{"success": false, "error": "no numbers"}', 0, "provider_rejected", 502),
        (200, "{}", 3, "provider_unavailable", 503),  # a read timeout after the request was sent
    ],
    ids=["server-error", "garbled", "rejected", "read-timeout"],
)
def test_a_failure_that_may_have_set_up_a_call_does_not_fail_over(
    client: Client,
    both: Any,
    fake_telefon_ip: FakeTelefonIp,
    fake_sms_ru: FakeSmsRu,
    sent: SignalLog,
    status: int,
    body: str,
    delay: float,
    code: str,
    http_status: int,
) -> None:
    both.CALLAUTH_TELEFON_IP_TIMEOUT = (1, 0.3)
    fake_telefon_ip.fail_next(status, body, delay)
    assert_json_error(start(client), http_status, code)
    assert fake_sms_ru.requests == [] and sent.of("failed_over") == []
    assert list(CallAuthFlow.objects.values_list("provider", "status", "failure_reason")) == [
        ("telefon_ip", "failed", "provider_error")
    ]


def test_when_every_provider_fails_the_last_error_is_shown(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu, sent: SignalLog
) -> None:
    fake_telefon_ip.stop()
    fake_sms_ru.fail_next(200, '{"status": "ERROR", "status_code": 201, "status_text": "no money"}')
    assert_json_error(start(client), 502, "provider_rejected")
    assert list(CallAuthFlow.objects.values_list("provider", "status", "failure_reason")) == [
        ("sms_ru", "failed", "provider_error")
    ]
    assert len(sent.of("failed_over")) == 1


def test_a_failover_within_one_start_is_counted_once(client: Client, both: Any, fake_telefon_ip: FakeTelefonIp) -> None:
    both.CALLAUTH_RATE_LIMITS = {"phone": "1/m"}
    fake_telefon_ip.stop()
    assert start(client).status_code == 201  # two providers asked, one start counted
    assert_json_error(start(Client(), PHONE), 429, "rate_limited")


def test_failing_over_to_a_webhook_provider_gives_the_flow_its_secret(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu
) -> None:
    both.CALLAUTH_PROVIDER = ["sms_ru", "telefon_ip"]
    both.CALLAUTH_WEBHOOK_BASE_URL = "https://site.example"
    fake_sms_ru.stop()
    response = start(client)
    assert response.status_code == 201
    flow = CallAuthFlow.objects.get()
    assert (flow.provider, flow.uses_webhook) == ("telefon_ip", True)
    assert fake_telefon_ip.requests[0].body["webhook"].startswith(f"https://site.example/callauth/webhook/{flow.pk}/")
    assert 115 <= response.json()["expires_in"] <= 120  # telefon-ip's numbers live 2 minutes


# -- low balances (balances.py) and the person's address ----------------------------------------


def test_a_provider_known_to_be_low_is_passed_by(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu, caplog: Any
) -> None:
    both.CALLAUTH_LOW_BALANCE = {"telefon_ip": 100}
    balances.record("telefon_ip", ProviderBalance(Decimal("99.99"), "RUB"))
    assert start(client).status_code == 201
    assert CallAuthFlow.objects.get().provider == "sms_ru"
    assert fake_telefon_ip.requests == []  # not even asked: it would bill a start it may not serve


@pytest.mark.parametrize(
    ("thresholds", "seen", "age"),
    [
        ({"telefon_ip": 100}, "100", 0),  # at the threshold is not below it
        ({}, "1", 0),  # no threshold
        ({"telefon_ip": 100}, "1", balances.MAX_AGE_SECONDS + 1),  # seen too long ago
        ({"telefon_ip": 100}, None, 0),  # never seen
    ],
    ids=["at-threshold", "no-threshold", "stale", "unknown"],
)
def test_a_provider_not_known_to_be_low_is_asked(
    client: Client, both: Any, clock: Clock, thresholds: Any, seen: str | None, age: int
) -> None:
    both.CALLAUTH_LOW_BALANCE = thresholds
    if seen is not None:
        balances.record("telefon_ip", ProviderBalance(Decimal(seen), "RUB"))
    clock.advance(age)
    assert start(client).status_code == 201
    assert CallAuthFlow.objects.get().provider == "telefon_ip"


def test_the_last_provider_is_asked_even_when_low(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp, fake_sms_ru: FakeSmsRu
) -> None:
    both.CALLAUTH_LOW_BALANCE = {"telefon_ip": 100, "sms_ru": 100}
    balances.record("telefon_ip", ProviderBalance(Decimal("1"), "RUB"))
    balances.record("sms_ru", ProviderBalance(Decimal("1"), "RUB"))
    assert start(client).status_code == 201
    assert CallAuthFlow.objects.get().provider == "sms_ru"
    both.CALLAUTH_PROVIDER = "telefon_ip"
    assert start(Client()).status_code == 201
    assert CallAuthFlow.objects.filter(provider="telefon_ip").count() == 1


def test_a_failing_cache_knows_no_balance(client: Client, both: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    both.CALLAUTH_LOW_BALANCE = {"telefon_ip": 100}
    balances.record("telefon_ip", ProviderBalance(Decimal("1"), "RUB"))

    monkeypatch.setattr(balances, "_cache", BrokenCache)
    assert start(client).status_code == 201
    assert CallAuthFlow.objects.get().provider == "telefon_ip"


@pytest.mark.parametrize(
    ("remote_addr", "sent_ip"),
    [
        ("77.88.55.60", "77.88.55.60"),
        ("::ffff:77.88.55.60", "77.88.55.60"),
        ("2a02:6b8::feed:0ff", "2a02:6b8::feed:ff"),
        ("127.0.0.1", None),
        ("10.1.2.3", None),
        ("192.168.0.7", None),
        ("", None),
    ],
    ids=["public", "mapped", "ipv6", "loopback", "private", "home", "unknown"],
)
def test_sms_ru_is_given_the_persons_public_address_only(
    sms_ru: Any, fake_sms_ru: FakeSmsRu, remote_addr: str, sent_ip: str | None
) -> None:
    assert start(Client(REMOTE_ADDR=remote_addr)).status_code == 201
    (asked,) = fake_sms_ru.requests
    assert asked.body.get("ip") == sent_ip


def test_a_provider_that_asks_for_no_address_is_never_given_one(
    client: Client, both: Any, fake_telefon_ip: FakeTelefonIp
) -> None:
    # telefon-ip (like docs/example_provider.py) takes no client_ip: the keyword would break it.
    assert start(Client(REMOTE_ADDR="77.88.55.60")).status_code == 201
    (asked,) = fake_telefon_ip.requests
    assert "77.88.55.60" not in str(asked)
