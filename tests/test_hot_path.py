"""The status poll is the hot path: every open challenge page hits it every 2 seconds.

These tests pin how much work one poll does, in database queries and provider requests,
so a change that adds work there shows up as a failing number, not as a slow site.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import responses
from django.test import Client
from django.utils import timezone

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow

pytestmark = pytest.mark.django_db

TOKEN = "tok-hot-path"
CHECK_URL = f"https://api.telefon-ip.ru/api/v1/authcalls/{TOKEN}/reverse_auth_phone_check/122760/"


@pytest.fixture
def telefon_ip(settings: Any) -> None:
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = TOKEN


def browser_with(flow: CallAuthFlow) -> Client:
    client = Client()
    session = client.session
    session[SESSION_FLOW_KEY] = str(flow.pk)
    session.save()
    return client


def make_flow(**fields: Any) -> CallAuthFlow:
    values: dict[str, Any] = {
        "phone": "+79001234567",
        "call_to": "+79644115786",
        "provider": "telefon_ip",
        "provider_id": "122760",
        "expires_at": timezone.now() + timedelta(seconds=120),
    }
    values.update(fields)
    return CallAuthFlow.objects.create(**values)


@responses.activate
def test_poll_of_a_webhook_flow_reads_two_rows_and_asks_nobody(
    telefon_ip: None, django_assert_num_queries: Any
) -> None:
    browser = browser_with(make_flow(webhook_secret_hash="0" * 64))
    with django_assert_num_queries(2):  # the session, the flow
        response = browser.get("/callauth/status/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "pending"
    assert len(responses.calls) == 0


@responses.activate
def test_poll_of_a_check_flow_between_checks_reads_two_rows_and_asks_nobody(
    telefon_ip: None, django_assert_num_queries: Any
) -> None:
    browser = browser_with(make_flow(last_checked_at=timezone.now()))
    with django_assert_num_queries(2):
        response = browser.get("/callauth/status/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "pending"
    assert len(responses.calls) == 0


@responses.activate
def test_poll_when_a_check_is_due_asks_the_provider_once(telefon_ip: None, django_assert_num_queries: Any) -> None:
    responses.get(CHECK_URL, json={"success": False, "error": "not yet", "data": {}})
    browser = browser_with(make_flow())
    # session, flow, the conditional update that claims the check, its refresh
    with django_assert_num_queries(4):
        response = browser.get("/callauth/status/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "pending"
    assert [call.request.url for call in responses.calls] == [CHECK_URL]
