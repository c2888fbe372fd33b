"""Account-wide callbacks (webhooks.callback) and vouching providers (flows.confirmed_caller), with sms.ru.

Per-flow webhooks (webhooks.webhook) are played by telefon-ip in test_security_webhook_forgery.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from django_callauth import flows
from django_callauth.guards import webhook_secrets
from django_callauth.models import CallAuthFlow
from django_callauth.providers.base import CallReport
from django_callauth.providers.sms_ru import SmsRuProvider
from django_callauth.providers.telefon_ip import TelefonIpProvider
from tests.fake_sms_ru import FakeSmsRu
from tests.helpers import PHONE, Clock, FlowFactory, assert_json_error, poll, snapshot, start, the_flow

pytestmark = pytest.mark.django_db


def callback(provider: str = "sms_ru", **form: Any) -> Any:
    return Client().post(reverse("callauth:callback", kwargs={"provider_name": provider}), form)


def entry(check_id: str, status: str = "401") -> str:
    return f"callcheck_status\n{check_id}\n{status}\n1700000000"


def asked(fake: FakeSmsRu) -> list[str]:
    return [r.action for r in fake.requests]


def test_a_callback_is_verified_by_one_check_in_its_own_request(
    client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    started = start(client).json()
    assert poll(client) == "pending"
    assert asked(fake_sms_ru) == ["callcheck/add"]  # waiting for the callback costs nothing
    fake_sms_ru.make_call(started["call_to"], PHONE)

    response = callback(**{"data[]": entry(the_flow(client).provider_id)})
    assert (response.status_code, response.content) == (200, b"100")
    assert asked(fake_sms_ru) == ["callcheck/add", "callcheck/status"]  # the callback alone confirms nothing
    assert poll(client) == "confirmed"  # the page's next poll already knows
    assert asked(fake_sms_ru) == ["callcheck/add", "callcheck/status"]
    assert the_flow(client).caller == PHONE  # sms.ru vouched for the phone it was given


def test_a_callback_whose_check_fails_is_still_answered_and_checked_again(
    clock: Clock, client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    fake_sms_ru.make_call(start(client).json()["call_to"], PHONE)
    fake_sms_ru.fail_next(502, "Bad Gateway")
    fake_sms_ru.fail_next(502, "Bad Gateway")  # and its one retry
    response = callback(**{"data[]": entry(the_flow(client).provider_id)})
    assert (response.status_code, response.content) == (200, b"100")
    assert the_flow(client).webhook_received_at is not None  # the report is kept
    assert poll(client) == "pending"  # the interval holds
    clock.advance(3)
    assert poll(client) == "confirmed"


def test_a_forged_callback_costs_one_check_and_confirms_nothing_even_unverified(
    client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    sms_ru.CALLAUTH_WEBHOOK_VERIFY = False  # per-flow webhooks only: a callback is always checked
    start(client)
    expires_at = the_flow(client).expires_at
    callback(**{"data[0]": entry(the_flow(client).provider_id)})  # no call was made
    flow = the_flow(client)
    # Waiting again, as before it came: the deadline did not move, and a poll asks nothing.
    assert (flow.status, flow.webhook_received_at, flow.expires_at) == ("pending", None, expires_at)
    assert poll(client) == "pending"
    assert asked(fake_sms_ru) == ["callcheck/add", "callcheck/status"]


def test_a_callback_reaches_only_flows_of_its_provider(
    client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu, flow_factory: FlowFactory
) -> None:
    fake_sms_ru.make_call(start(client).json()["call_to"], PHONE)
    other = flow_factory(provider="telefon_ip", provider_id=the_flow(client).provider_id)
    callback(**{"data[]": entry(other.provider_id)})
    assert CallAuthFlow.objects.get(pk=other.pk).webhook_received_at is None
    assert the_flow(client).status == "confirmed"


@pytest.mark.parametrize("form", [{"data[]": entry("999-1")}, {"data[]": entry("1-1", "402")}, {}])
def test_a_callback_naming_nothing_of_ours_writes_nothing_and_is_still_answered(
    sms_ru: Any, form: Any, flow_factory: FlowFactory
) -> None:
    flow_factory(provider="sms_ru", provider_id="1-2")  # a live flow the callback does not name
    before = snapshot()
    response = callback(**form)
    assert (response.status_code, response.content) == (200, b"100")
    assert snapshot() == before


@pytest.mark.parametrize("provider", ["telefon_ip", "sandbox", "nobody"])
def test_only_providers_with_an_account_callback_have_one(sms_ru: Any, provider: str) -> None:
    assert callback(provider, **{"data[]": entry("1-1")}).status_code == 404


def test_without_a_registered_callback_sms_ru_flows_are_polled(
    clock: Clock, client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    sms_ru.CALLAUTH_SMS_RU_CALLBACK = False
    started = start(client).json()
    assert poll(client) == "pending"
    fake_sms_ru.make_call(started["call_to"], PHONE)
    clock.advance(3)
    assert poll(client) == "confirmed"
    assert asked(fake_sms_ru) == ["callcheck/add", "callcheck/status", "callcheck/status"]


def test_a_vouch_counts_only_from_a_provider_that_vouches(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, flow_factory: FlowFactory
) -> None:
    # A provider whose reports must name the caller cannot confirm by saying "vouched".
    flow = flow_factory(provider="telefon_ip", provider_id="122760", call_to="+79644115786")
    settings.CALLAUTH_TELEFON_IP_TOKEN = "token"
    monkeypatch.setattr(
        TelefonIpProvider, "check", lambda self, provider_id: CallReport(None, provider_id, vouched=True)
    )
    flows.refresh_flow(flow)
    assert CallAuthFlow.objects.get(pk=flow.pk).status == "pending"


def test_a_vouch_about_another_id_confirms_nothing(client: Client, sms_ru: Any, monkeypatch: Any) -> None:
    sms_ru.CALLAUTH_SMS_RU_CALLBACK = False
    start(client)
    monkeypatch.setattr(SmsRuProvider, "check", lambda self, provider_id: CallReport(None, "other-1", vouched=True))
    assert poll(client) == "pending"


@pytest.mark.parametrize("provider", ["sms_ru", "sandbox", "gone"], ids=["account_callback", "none", "not_configured"])
def test_a_per_flow_webhook_of_a_provider_without_them_is_unknown(
    sms_ru: Any, flow_factory: FlowFactory, provider: str
) -> None:
    # Even with the flow's right secret: only a provider with per-flow webhooks reads one.
    flow = flow_factory(provider=provider, webhook_secret_hash=webhook_secrets.hash_secret("s3cr3t"))
    before = snapshot()
    response = Client().get(reverse("callauth:webhook", kwargs={"flow_id": flow.pk, "secret": "s3cr3t"}))
    assert_json_error(response, 404, "not_found", "Unknown webhook.")
    assert snapshot() == before
