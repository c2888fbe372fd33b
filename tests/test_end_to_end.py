"""End to end over real HTTP: the example site on a live server, the telefon-ip fake on loopback.

Nothing is mocked between the parts: the site's client talks HTTP to the fake, the fake
calls the site's webhook over HTTP, and the "browser" is a ``requests`` session that
keeps cookies and sends the CSRF token like a single-page app would.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from django_callauth.models import CallAuthFlow
from tests.fake_telefon_ip import FakeTelefonIp
from tests.helpers import PHONE, LiveClient, assert_logged_in_as

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(live_server: Any, settings: Any, fake_telefon_ip: FakeTelefonIp) -> Any:
    settings.CALLAUTH_PROVIDER = "telefon_ip"
    settings.CALLAUTH_TELEFON_IP_TOKEN = fake_telefon_ip.token
    settings.CALLAUTH_TELEFON_IP_URL = fake_telefon_ip.base_url
    settings.CALLAUTH_WEBHOOK_BASE_URL = ""
    settings.CALLAUTH_CHECK_INTERVAL = 1
    settings.CALLAUTH_SIGNUP = True
    return live_server


@pytest.fixture
def webhook_site(site: Any, settings: Any) -> Any:
    settings.CALLAUTH_WEBHOOK_BASE_URL = site.url
    return site


def actions(fake: FakeTelefonIp) -> list[str]:
    return [f"{r.method} {r.action}" for r in fake.requests]


class TestWebhookMode:
    def test_a_lost_webhook_does_not_strand_a_person_who_called(
        self, webhook_site: Any, fake_telefon_ip: FakeTelefonIp
    ) -> None:
        browser = LiveClient(webhook_site.url)
        started = browser.start()
        assert fake_telefon_ip.make_call(started["call_to"], PHONE, lose_webhook=True) is None
        assert browser.status() == "pending"
        assert actions(fake_telefon_ip) == ["POST reverse_auth_phone_post"]  # polls still ask nothing

        response = browser.complete()  # "I have called": worth one check
        assert response.status_code == 200, response.text
        assert_logged_in_as(browser, PHONE)
        assert actions(fake_telefon_ip) == ["POST reverse_auth_phone_post", "GET reverse_auth_phone_check"]

    def test_new_user_logs_in_with_one_start_and_one_check(
        self, webhook_site: Any, fake_telefon_ip: FakeTelefonIp
    ) -> None:
        browser = LiveClient(webhook_site.url)
        started = browser.start("8 (900) 123-45-67", next="/?welcome=1")
        assert started["status"] == "pending"
        assert re.fullmatch(r"\+79\d{9}", started["call_to"])
        assert started["tel_uri"] == "tel:" + started["call_to"]

        # Before the call, polls never reach the provider in webhook mode.
        assert browser.status() == "pending"
        assert actions(fake_telefon_ip) == ["POST reverse_auth_phone_post"]

        assert fake_telefon_ip.make_call(started["call_to"], PHONE) == 200
        assert browser.wait_for_status("confirmed") == "confirmed"
        response = browser.complete()

        assert response.status_code == 200
        assert response.json() == {"redirect": "/?welcome=1"}
        assert_logged_in_as(browser, PHONE)
        assert actions(fake_telefon_ip) == ["POST reverse_auth_phone_post", "GET reverse_auth_phone_check"]
        start_request = fake_telefon_ip.requests[0]
        assert start_request.body["phone"] == "89001234567"
        assert start_request.body["webhook"].startswith(webhook_site.url + "/callauth/webhook/")
        flow = CallAuthFlow.objects.get()
        assert fake_telefon_ip.requests[1].path.endswith(f"/reverse_auth_phone_check/{flow.provider_id}/")


class TestCheckMode:
    def test_polls_ask_the_provider_until_the_call_confirms(self, site: Any, fake_telefon_ip: FakeTelefonIp) -> None:
        browser = LiveClient(site.url)
        started = browser.start("9001234567")

        assert browser.status() == "pending"
        assert actions(fake_telefon_ip) == ["GET reverse_auth_phone_get", "GET reverse_auth_phone_check"]
        assert fake_telefon_ip.requests[0].params == {"phone": "89001234567"}

        assert fake_telefon_ip.make_call(started["call_to"], PHONE) is None  # no webhook in check mode
        assert browser.wait_for_status("confirmed") == "confirmed"
        assert browser.complete().json() == {"redirect": "/"}
        assert_logged_in_as(browser, PHONE)


class TestSandbox:
    def test_html_flow_without_javascript(self, live_server: Any, settings: Any) -> None:
        settings.CALLAUTH_PROVIDER = "sandbox"
        session = requests.Session()
        login_page = session.get(live_server.url + "/login/?next=/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
        assert token is not None

        challenge = session.post(
            live_server.url + "/callauth/start/", data={"phone": "+7 900 123-45-67", "csrfmiddlewaretoken": token[1]}
        )
        assert challenge.url == live_server.url + "/callauth/challenge/"
        number = CallAuthFlow.objects.get().call_to
        assert f'href="tel:{number}"' in challenge.text

        def post_form(action: str, page: requests.Response) -> requests.Response:
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert csrf is not None
            return session.post(live_server.url + action, data={"csrfmiddlewaretoken": csrf[1]})

        after_call = post_form("/callauth/sandbox/call/", challenge)
        assert "Call received" in after_call.text
        home = post_form("/callauth/complete/", after_call)

        assert home.url == live_server.url + "/"
        assert f'<strong class="home-phone">{PHONE}</strong>' in home.text
