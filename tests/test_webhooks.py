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


def test_a_callback_makes_the_flow_eligible_for_one_check_that_confirms(
    client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    started = start(client).json()
    assert poll(client) == "pending"
    assert asked(fake_sms_ru) == ["callcheck/add"]  # waiting for the callback costs nothing
    fake_sms_ru.make_call(started["call_to"], PHONE)

    response = callback(**{"data[]": entry(the_flow(client).provider_id)})
    assert (response.status_code, response.content) == (200, b"100")
    assert the_flow(client).status == "pending"  # the callback alone confirms nothing
    assert the_flow(client).webhook_received_at is not None
    assert asked(fake_sms_ru) == ["callcheck/add"]

    assert poll(client) == "confirmed"
    assert asked(fake_sms_ru) == ["callcheck/add", "callcheck/status"]
    assert the_flow(client).caller == PHONE  # sms.ru vouched for the phone it was given


def test_a_callback_never_confirms_by_itself_even_unverified(
    client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    sms_ru.CALLAUTH_WEBHOOK_VERIFY = False
    start(client)
    callback(**{"data[0]": entry(the_flow(client).provider_id)})
    flow = the_flow(client)
    assert (flow.status, flow.webhook_received_at is not None) == ("pending", True)


def test_a_forged_callback_costs_one_check_and_confirms_nothing(
    client: Client, sms_ru: Any, fake_sms_ru: FakeSmsRu
) -> None:
    start(client)
    callback(**{"data[]": entry(the_flow(client).provider_id)})  # no call was made
    assert poll(client) == "pending"
    assert asked(fake_sms_ru) == ["callcheck/add", "callcheck/status"]


def test_a_callback_reaches_only_flows_of_its_provider(client: Client, sms_ru: Any, flow_factory: FlowFactory) -> None:
    start(client)
    other = flow_factory(provider="telefon_ip", provider_id=the_flow(client).provider_id)
    callback(**{"data[]": entry(other.provider_id)})
    assert CallAuthFlow.objects.get(pk=other.pk).webhook_received_at is None
    assert the_flow(client).webhook_received_at is not None


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
