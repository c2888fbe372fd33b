"""Learning whether a phone has an account (docs/security.rst, invariant 7).

Starting, the challenge page, the status and an early finish answer the same for a known
and an unknown phone, and ask the provider the same.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from django_callauth.models import CallAuthFlow, CallAuthPhone
from django_callauth.phones import format_phone
from tests.helpers import (
    JSON,
    OTHER_PHONE,
    PHONE,
    START_POST,
    complete,
    start,
    start_answer,
    the_flow,
    url,
)

pytestmark = pytest.mark.django_db


# == Invariant 7: no enumeration ===========================================================================


def _scrub(html: str, flow: CallAuthFlow) -> str:
    """The page minus what legitimately differs: the numbers, the QR, CSRF tokens, times."""
    html = re.sub(r"data:image/svg\+xml[^\"]*", "QR", html)
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken" value="CSRF"', html)
    for phone in (flow.call_to, flow.phone):
        html = html.replace(format_phone(phone), "NUMBER").replace(phone, "NUMBER")
    html = re.sub(r'data-expires-in="[0-9]+"', 'data-expires-in="T"', html)
    return re.sub(r"Time left: [0-9]+ s", "Time left: T s", html)


class TestInvariant7NoEnumeration:
    @pytest.fixture(params=[True, False], ids=["signup", "no-signup"])
    def known_phone(self, request, settings, django_user_model):
        settings.CALLAUTH_SIGNUP = request.param
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        return PHONE

    def _json_start(self, phone):
        browser = Client()
        response = start(browser, phone)
        return response, browser

    def test_html_start_and_challenge_are_identical(self, known_phone):
        pages = []
        for phone in (known_phone, OTHER_PHONE):
            browser = Client()
            response = browser.post(url("start"), {"phone": phone})
            assert (response.status_code, response["Location"]) == (302, url("challenge"))
            challenge = browser.get(url("challenge"))
            assert challenge.status_code == 200
            pages.append(_scrub(challenge.content.decode(), the_flow(browser)))
        assert pages[0] == pages[1]

    def test_same_answer_and_same_provider_request_with_telefon_ip(self, known_phone, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        answers = []
        for phone in (known_phone, OTHER_PHONE):
            answers.append(self._json_start(phone)[0])
        a, b = (r.json() for r in answers)
        assert answers[0].status_code == answers[1].status_code == 201
        assert {k: v for k, v in a.items() if k not in {"expires_at", "expires_in"}} == {
            k: v for k, v in b.items() if k not in {"expires_at", "expires_in"}
        }
        sent = [json.loads(call.request.body) for call in telefon_ip_api.calls]
        assert [set(s) for s in sent] == [{"phone", "webhook"}] * 2
        assert [c.request.method for c in telefon_ip_api.calls] == ["POST", "POST"]

    def test_pending_status_and_early_finish_are_identical(self, known_phone):
        seen = []
        for phone in (known_phone, OTHER_PHONE):
            browser = Client()
            start(browser, phone)
            status = browser.get(url("status"), **JSON)
            finish = complete(browser)
            seen.append((status.status_code, status.json()["status"], finish.status_code, finish.json()))
        assert seen[0] == seen[1]
