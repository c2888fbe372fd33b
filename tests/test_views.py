"""The login_views, as a browser (HTML) and as a script (JSON) sees them.

Sandbox provider by default (tests/settings.py); the webhook tests switch to telefon_ip
and play the provider with ``responses`` (the ``telefon_ip_api`` fixture). Time is moved
by the ``clock`` fixture, never by sleeping.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from django_callauth import errors
from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowPurpose, FlowStatus
from django_callauth.phones import MAX_INPUT_LENGTH, format_phone
from django_callauth.providers.base import ProviderError, StartedCall
from django_callauth.providers.sandbox import SandboxProvider
from django_callauth.web import formstate
from django_callauth.web import login as login_views
from django_callauth.web import phones as phone_views
from django_callauth.web import sandbox as sandbox_views
from django_callauth.web.negotiation import request_data
from django_callauth.web.presenters import flow_problem
from tests.helpers import (
    API,
    CALL_TO,
    JSON,
    MESSAGES,
    OTHER_PHONE,
    PHONE,
    PHONE_FOR_PROVIDER,
    PROVIDER_ID,
    START_GET,
    START_POST,
    assert_json_error,
    call_webhook,
    check_answer,
    complete,
    logged_in_phone,
    poll,
    sandbox_confirm,
    start,
    start_answer,
    the_flow,
    url,
    webhook_path,
)

pytestmark = pytest.mark.django_db

E164 = re.compile(r"\+7[0-9]{10}")

CHECK = API + f"reverse_auth_phone_check/{PROVIDER_ID}/"


START_KEYS = {"status", "call_to", "tel_uri", "qr", "expires_at", "expires_in", "status_url", "complete_url"}


# -- telefon-ip played by `responses` ----------------------------------------------


# -- start ----------------------------------------------------------------------------


class QuotaSpent(ProviderError):
    """A project provider's own failure, with an answer of its own (not ProviderError's default)."""

    error = errors.PROVIDER_NOT_ANSWERING


class QuotaSpentProvider(SandboxProvider):
    """A project's provider whose calls budget is spent: every start raises its own error."""

    name = "project_quota"

    def start(self, phone: str, webhook_url: str | None) -> StartedCall:
        raise QuotaSpent("monthly call budget spent")


class TestStart:
    def test_a_project_providers_own_error_is_answered_with_its_error(self, client, settings):
        settings.CALLAUTH_PROVIDER = f"{__name__}.QuotaSpentProvider"
        assert_json_error(start(client), 503, "provider_unavailable", str(errors.PROVIDER_NOT_ANSWERING.message))
        response = client.post(url("start"), {"phone": PHONE})
        assert response.status_code == 503
        assert str(errors.PROVIDER_NOT_ANSWERING.message) in response.content.decode()

    def test_json_answer_has_exactly_the_documented_fields(self, client):
        before = timezone.now()
        response = start(client)
        assert response.status_code == 201
        body = response.json()
        assert set(body) == START_KEYS | {"sandbox_call_url"}
        assert body["status"] == "pending"
        assert E164.fullmatch(body["call_to"])
        assert body["tel_uri"] == "tel:" + body["call_to"]
        assert body["qr"].startswith("data:image/svg+xml")
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert expires_at.tzinfo is not None
        assert before + timedelta(seconds=119) <= expires_at <= timezone.now() + timedelta(seconds=120)
        assert body["expires_in"] in (119, 120)
        assert body["status_url"] == url("status")
        assert body["complete_url"] == url("complete")
        assert body["sandbox_call_url"] == url("sandbox_call")
        flow = the_flow(client)
        assert (flow.phone, flow.call_to, flow.status) == (PHONE, body["call_to"], FlowStatus.PENDING)

    def test_json_answer_without_sandbox_has_no_sandbox_url(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        response = start(client)
        assert response.status_code == 201
        body = response.json()
        assert set(body) == START_KEYS
        assert body["call_to"] == CALL_TO
        assert body["tel_uri"] == "tel:" + CALL_TO

    def test_html_start_redirects_to_the_challenge_page(self, client):
        response = client.post(url("start"), {"phone": PHONE})
        assert response.status_code == 302
        assert response["Location"] == url("challenge")
        assert the_flow(client).phone == PHONE

    @pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
    def test_json_body_is_accepted(self, client, content_type):
        response = client.post(url("start"), json.dumps({"phone": PHONE}), content_type=content_type, **JSON)
        assert response.status_code == 201
        assert the_flow(client).phone == PHONE

    @pytest.mark.parametrize(
        "body", ["[]", '["+79001234567"]', '"+79001234567"', "79001234567", "null", "true", "{", "{'phone': 1}", "\xff"]
    )
    def test_json_body_that_is_not_an_object_is_invalid_request(self, client, body):
        response = client.post(url("start"), body, content_type="application/json", **JSON)
        assert_json_error(response, 400, "invalid_request")
        assert not CallAuthFlow.objects.exists()

    def test_json_body_not_an_object_in_html(self, client):
        response = client.post(url("start"), "[]", content_type="application/json")
        assert response.status_code == 400
        assert MESSAGES["invalid_request"] in response.content.decode()
        assert not CallAuthFlow.objects.exists()

    def test_missing_phone_is_invalid_phone(self, client):
        response = client.post(url("start"), {}, **JSON)
        assert_json_error(response, 400, "invalid_phone")

    def test_invalid_phone_in_html_redisplays_the_form_with_the_error(self, client):
        response = client.post(url("start"), {"phone": "+7 800 555-35-35", "next": "/after/"})
        assert response.status_code == 400
        html = response.content.decode()
        assert "Only Russian mobile numbers (+7 9XX …) can log in by phone call." in html
        assert 'aria-invalid="true"' in html
        assert 'value="+7 800 555-35-35"' in html
        assert 'name="next" value="/after/"' in html
        assert not CallAuthFlow.objects.exists()


class TestRefusalOnTheProjectsPage:
    """The phone form on a project's page posts ``from``: a refusal is shown there, the phone kept."""

    def test_invalid_phone_goes_back_to_the_page_with_the_phone(self, client):
        data = {"phone": "+7 800 555-35-35", "next": "/after/", "from": "/login/?next=/after/"}
        response = client.post(url("start"), data)
        assert response.status_code == 302
        assert response["Location"] == "/login/?next=/after/"
        html = client.get(response["Location"]).content.decode()
        assert (
            '<p id="callauth-phone-error" class="callauth-field-error" role="alert">'
            "Only Russian mobile numbers (+7 9XX …) can log in by phone call.</p>"
        ) in html
        assert 'value="+7 800 555-35-35"' in html
        assert 'name="next" value="/after/"' in html
        assert "callauth-phone-error" not in client.get("/login/?next=/after/").content.decode()  # once
        assert not CallAuthFlow.objects.exists()

    def test_a_rate_limit_goes_back_to_the_page(self, client, settings):
        settings.CALLAUTH_RATE_LIMITS = {"ip": "1/m"}
        assert start(Client(), OTHER_PHONE).status_code == 201  # another browser, the same address
        response = client.post(url("start"), {"phone": "+7 900 123-45-67", "from": "/login/"})
        assert (response.status_code, response["Location"]) == (302, "/login/")
        html = client.get("/login/").content.decode()
        said = (
            r'<p class="callauth-error" role="alert">Too many attempts to log in by phone call\. Try again in [^<]+</p>'
        )
        assert re.search(said, html)
        assert 'value="+7 900 123-45-67"' in html

    @pytest.mark.parametrize("page", ["https://evil.example/login/", "//evil.example/", "javascript:alert(1)", "/a\n/"])
    def test_a_page_elsewhere_is_ignored(self, client, page):
        response = client.post(url("start"), {"phone": "+7 800 555-35-35", "from": page})
        assert response.status_code == 400  # the app's own page says it
        assert "Only Russian mobile numbers (+7 9XX …) can log in by phone call." in response.content.decode()
        assert formstate.SESSION_KEY not in client.session

    def test_json_clients_get_their_error_as_before(self, client):
        response = client.post(url("start"), {"phone": "abc", "from": "/login/"}, **JSON)
        assert_json_error(response, 400, "invalid_phone")
        assert formstate.SESSION_KEY not in client.session


# -- challenge ------------------------------------------------------------------------


class TestChallenge:
    def test_page_shows_everything_needed_to_call(self, client):
        client.post(url("start"), {"phone": PHONE})
        flow = the_flow(client)
        response = client.get(url("challenge"))
        assert response.status_code == 200
        html = response.content.decode()
        # The parts, each one's markup pinned by its tag's test (test_templatetags.py): the tel:
        # button (a phone), the number in large digits by the QR code (a desktop), the countdown.
        assert f'href="tel:{flow.call_to}"' in html
        assert format_phone(flow.call_to) in html
        assert re.search(r'<img class="callauth-qr" src="data:image/svg\+xml[^"]+"', html)
        assert re.search(r'role="timer">1[12][0-9] seconds left</span>', html)
        assert "Call from <strong>+7 900 123-45-67</strong>" in html
        # The sandbox button and the no-JS "I have called" form, both with a CSRF token.
        assert f'action="{url("sandbox_call")}"' in html
        assert "Simulate the call" in html
        assert (
            f'<form method="post" action="{url("complete")}" id="callauth-complete" class="callauth-actions">' in html
        )
        assert "I have called" in html
        assert html.count('name="csrfmiddlewaretoken"') >= 2
        assert re.search(r'<script src="[^"]*callauth/challenge\.js" defer></script>', html)
        assert "no-store" in response["Cache-Control"]

    def test_no_sandbox_button_with_a_real_provider(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        client.post(url("start"), {"phone": PHONE})
        response = client.get(url("challenge"))
        html = response.content.decode()
        assert response.status_code == 200
        assert "Simulate the call" not in html
        assert f'href="tel:{CALL_TO}"' in html
        assert "I have called" in html

    def test_json_challenge_repeats_the_start_payload(self, client):
        started = start(client).json()
        response = client.get(url("challenge"), **JSON)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == set(started)
        assert {k: body[k] for k in ("call_to", "tel_uri", "qr", "expires_at", "status")} == {
            k: started[k] for k in ("call_to", "tel_uri", "qr", "expires_at", "status")
        }

    def test_without_a_flow(self, client):
        assert_json_error(client.get(url("challenge"), **JSON), 400, "no_flow")
        response = client.get(url("challenge"))
        assert response.status_code == 400
        html = response.content.decode()
        assert MESSAGES["no_flow"] in html
        assert f'action="{url("start")}"' in html  # the phone form to start again

    def test_expired_flow_shows_the_form_to_start_again(self, clock, client):
        client.post(url("start"), {"phone": PHONE})
        clock.advance(121)
        response = client.get(url("challenge"))
        html = response.content.decode()
        assert response.status_code == 200
        assert '<h1 class="callauth-title">Time is up</h1>' in html
        assert "callauth-number" not in html
        assert f'action="{url("start")}"' in html
        assert '<input type="hidden" name="phone" value="+7 900 123-45-67">' in html  # the same phone again


# -- status ---------------------------------------------------------------------------


class TestStatus:
    def test_pending(self, client):
        start(client)
        response = client.get(url("status"), **JSON)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "expires_in"}
        assert body["status"] == "pending"
        assert body["expires_in"] in (119, 120)

    def test_confirmed_after_the_sandbox_call(self, client):
        sandbox_confirm(client)
        assert poll(client) == "confirmed"

    def test_expired(self, clock, client):
        start(client)
        clock.advance(120)
        assert client.get(url("status"), **JSON).json() == {"status": "expired", "expires_in": 0}
        assert the_flow(client).status == FlowStatus.EXPIRED

    def test_failed_on_another_phone(self, client):
        start(client)
        client.post(url("sandbox_call"), {"caller": OTHER_PHONE}, **JSON)
        assert poll(client) == "failed"

    def test_html_goes_to_the_challenge_page(self, client):
        start(client)
        response = client.get(url("status"))
        assert response.status_code == 302
        assert response["Location"] == url("challenge")

    def test_without_a_flow(self, client):
        assert_json_error(client.get(url("status"), **JSON), 400, "no_flow")
        assert client.get(url("status")).status_code == 400

    def test_post_is_not_allowed(self, client):
        start(client)
        assert client.post(url("status"), **JSON).status_code == 405


# -- complete -------------------------------------------------------------------------


class TestComplete:
    def test_json_logs_in_and_names_the_redirect(self, client):
        sandbox_confirm(client)
        assert logged_in_phone(client) is None
        response = complete(client)
        assert response.status_code == 200
        assert response.json() == {"redirect": "/"}
        assert logged_in_phone(client) == PHONE

    def test_html_logs_in_and_redirects(self, client):
        client.post(url("start"), {"phone": PHONE})
        assert client.post(url("sandbox_call")).status_code == 302
        response = client.post(url("complete"))
        assert response.status_code == 302
        assert response["Location"] == "/"
        assert logged_in_phone(client) == PHONE

    def test_before_confirmation(self, client):
        start(client)
        assert_json_error(complete(client), 409, "not_confirmed")
        response = client.post(url("complete"))
        assert response.status_code == 409
        assert MESSAGES["not_confirmed"] in response.content.decode()
        assert "I have called" in response.content.decode()  # the page stays usable
        assert the_flow(client).status == FlowStatus.PENDING
        assert logged_in_phone(client) is None

    def test_expired_before_the_call(self, clock, client):
        start(client)
        clock.advance(121)
        assert_json_error(complete(client), 410, "expired")
        assert client.post(url("complete")).status_code == 410
        assert logged_in_phone(client) is None

    def test_phone_mismatch(self, client):
        start(client)
        assert client.post(url("sandbox_call"), {"caller": OTHER_PHONE}, **JSON).json()["status"] == "failed"
        assert_json_error(complete(client), 403, "phone_mismatch")
        assert client.post(url("complete")).status_code == 403
        assert logged_in_phone(client) is None

    def test_no_account_without_signup(self, client, settings, django_user_model):
        settings.CALLAUTH_SIGNUP = False
        sandbox_confirm(client)
        assert_json_error(complete(client), 403, "no_account")
        assert logged_in_phone(client) is None
        assert not django_user_model.objects.exists()
        flow = CallAuthFlow.objects.get()
        assert (flow.status, flow.failure_reason) == (FlowStatus.FAILED, FailureReason.NO_ACCOUNT)

    def test_staff_may_not_log_in_by_call(self, client, django_user_model):
        user = django_user_model.objects.create_user(username="boss", is_staff=True)
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        sandbox_confirm(client)
        assert_json_error(complete(client), 403, "not_allowed")
        assert logged_in_phone(client) is None

    @pytest.mark.parametrize("allow_staff", ["no", "false", 0])
    def test_staff_may_not_log_in_when_allow_staff_is_no_bool(self, client, settings, django_user_model, allow_staff):
        # "no" is true to Python: read as a bool, it once let staff log in by call.
        settings.CALLAUTH_ALLOW_STAFF = allow_staff
        user = django_user_model.objects.create_user(username="boss", is_staff=True)
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        sandbox_confirm(client)
        assert_json_error(complete(client), 503, "login_failed")
        assert logged_in_phone(client) is None

    def test_confirmed_but_no_backend_logs_in_is_a_misconfiguration(self, client, settings, caplog):
        settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]  # no CallAuthBackend
        flow = sandbox_confirm(client)
        assert_json_error(client.post(url("complete"), **JSON), 500, "misconfigured")
        assert the_flow(client).status == FlowStatus.CONFIRMED  # usable once the site is fixed
        assert logged_in_phone(client) is None
        assert f"Flow {flow.pk} is confirmed but no backend authenticated it: is CallAuthBackend installed?" in [
            r.getMessage() for r in caplog.records if r.levelname == "ERROR"
        ]

    def test_without_a_flow(self, client):
        assert_json_error(complete(client), 400, "no_flow")
        assert client.post(url("complete")).status_code == 400  # the page: TestChallenge::test_without_a_flow


# -- sandbox call ---------------------------------------------------------------------


class TestSandboxCall:
    def test_json(self, client):
        start(client)
        response = client.post(url("sandbox_call"), **JSON)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "expires_in"}
        assert body["status"] == "confirmed"
        flow = the_flow(client)
        assert (flow.status, flow.caller) == (FlowStatus.CONFIRMED, PHONE)

    def test_html(self, client):
        client.post(url("start"), {"phone": PHONE})
        response = client.post(url("sandbox_call"))
        assert response.status_code == 302
        assert response["Location"] == url("challenge")
        assert the_flow(client).status == FlowStatus.CONFIRMED

    def test_from_another_phone(self, client):
        start(client)
        response = client.post(
            url("sandbox_call"), json.dumps({"caller": "8 900 765-43-21"}), content_type="application/json", **JSON
        )
        assert response.json()["status"] == "failed"
        flow = the_flow(client)
        assert (flow.failure_reason, flow.caller) == (FailureReason.PHONE_MISMATCH, OTHER_PHONE)

    def test_without_a_flow(self, client):
        assert_json_error(client.post(url("sandbox_call"), **JSON), 400, "no_flow")

    def test_not_found_without_the_sandbox(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        start(client)
        flow = the_flow(client)
        assert_json_error(client.post(url("sandbox_call"), **JSON), 404, "not_found")
        assert client.post(url("sandbox_call")).status_code == 404
        flow.refresh_from_db()
        assert flow.status == FlowStatus.PENDING


# -- telefon-ip: start modes, webhook, check ------------------------------------------


class TestTelefonIp:
    def test_webhook_answers_at_once_and_asks_nobody(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(CHECK, json=check_answer())
        start(client)
        response = call_webhook(webhook_path(telefon_ip_api))
        assert response.status_code == 200
        assert response.json() == {"ok": True}
        assert len(telefon_ip_api.calls) == 1  # only the start: the webhook did not ask the provider
        flow = the_flow(client)
        assert flow.status == FlowStatus.PENDING
        assert flow.webhook_received_at is not None

    def test_webhook_by_post_is_accepted(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        start(client)
        response = Client().post(
            webhook_path(telefon_ip_api), {"success": "True", "phone": PHONE_FOR_PROVIDER, "id": str(PROVIDER_ID)}
        )
        assert response.status_code == 200
        assert the_flow(client).webhook_received_at is not None
        assert len(telefon_ip_api.calls) == 1

    def test_check_mode_complete_without_polling(self, client, telefon_ip_api, settings):
        """The no-JS button: the finish itself asks the provider."""
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(CHECK, json=check_answer("79001234567"))
        client.post(url("start"), {"phone": PHONE})
        response = client.post(url("complete"))
        assert response.status_code == 302
        assert response["Location"] == "/"
        assert logged_in_phone(client) == PHONE

    def test_webhook_method_not_allowed(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        start(client)
        path = webhook_path(telefon_ip_api)
        assert Client().put(path).status_code == 405
        assert Client().delete(path).status_code == 405
        assert the_flow(client).webhook_received_at is None


class TestErrorsThatDjangoWouldAnswerInHtml:
    """405, CSRF failures and the switched-off sandbox answer our JSON errors too."""

    @pytest.mark.parametrize(
        ("method", "name", "allowed"),
        [
            ("get", "start", "POST"),
            ("get", "complete", "POST"),
            ("post", "status", "GET"),
            ("put", "challenge", "GET"),
            ("get", "sandbox_call", "POST"),
        ],
    )
    def test_wrong_method(self, client, method, name, allowed):
        start(client)
        if name == "complete":  # a confirmed flow, which a GET must not finish
            client.post(url("sandbox_call"))
        before = the_flow(client).status
        response = getattr(client, method)(url(name), **JSON)
        assert_json_error(response, 405, "method_not_allowed")
        assert response["Allow"] == allowed
        assert getattr(client, method)(url(name)).status_code == 405
        assert logged_in_phone(client) is None
        assert the_flow(client).status == before

    def test_missing_csrf_token_in_json(self):
        browser = Client(enforce_csrf_checks=True)
        response = browser.post(url("start"), {"phone": "+79001234567"}, **JSON)
        assert response.status_code == 403
        assert response.json()["error"] == "csrf_failed"
        assert CallAuthFlow.objects.count() == 0

    @pytest.mark.parametrize("origin", [{"HTTP_ORIGIN": "https://evil.example"}, {}], ids=["other_origin", "none"])
    def test_a_valid_token_from_another_origin_over_https_says_where_it_failed(self, settings, origin):
        # A mobile or single-page client with the right token, but no Origin of this site.
        settings.ALLOWED_HOSTS = ["shop.example"]
        browser = Client(enforce_csrf_checks=True, HTTP_HOST="shop.example")
        browser.get("/login/", secure=True)
        token = browser.cookies["csrftoken"].value
        response = browser.post(
            url("start"), {"phone": "+79001234567"}, secure=True, HTTP_X_CSRFTOKEN=token, **origin, **JSON
        )
        assert_json_error(response, 403, "csrf_failed", str(errors.CSRF_WRONG_ORIGIN.message))
        assert CallAuthFlow.objects.count() == 0
        # The same request from the site's own origin passes.
        response = browser.post(
            url("start"),
            {"phone": "+79001234567"},
            secure=True,
            HTTP_X_CSRFTOKEN=token,
            HTTP_ORIGIN="https://shop.example",
            **JSON,
        )
        assert response.status_code == 201

    def test_missing_csrf_token_in_html_is_djangos_page(self):
        browser = Client(enforce_csrf_checks=True)
        response = browser.post(url("complete"))
        assert response.status_code == 403
        assert "CSRF verification failed" in response.content.decode()


class TestChallengePageOfAnEndedFlow:
    """The page's script reloads the challenge when a flow ends; the page says exactly why."""

    def test_call_from_another_phone(self, client):
        start(client)
        assert client.post(url("sandbox_call"), {"caller": OTHER_PHONE}, **JSON).json()["status"] == "failed"
        page = client.get(url("challenge")).content.decode()
        assert f'<p class="callauth-lead callauth-reason" role="alert">{MESSAGES["phone_mismatch"]}</p>' in page
        assert 'id="callauth-complete"' not in page  # nothing left to finish
        assert '<input type="hidden" name="phone" value="+7 900 123-45-67">' in page  # one button: the same phone
        assert '<h1 class="callauth-title">You are not logged in</h1>' in page
        assert 'data-state="ended"' in page

    @pytest.mark.parametrize("finish", ["challenge", "complete"])
    def test_no_new_number_is_offered_where_it_would_be_refused_again(self, client, settings, finish):
        # Signup off: this phone has no account, and a new number for it would end the same way.
        settings.CALLAUTH_SIGNUP = False
        start(client)
        client.post(url("sandbox_call"))
        if finish == "challenge":  # the page reloaded after the script's finish was refused
            assert_json_error(client.post(url("complete"), **JSON), 403, "no_account")
            response = client.get(url("challenge"))
        else:  # the form's finish, without JavaScript
            response = client.post(url("complete"))
        page = response.content.decode()
        assert MESSAGES["no_account"] in page
        assert 'id="callauth-restart"' not in page
        assert "Use another phone" in page  # the way on: another phone

    def test_finishing_a_flow_whose_start_failed_shows_no_number(self, client, flow_factory):
        # The form of a tab left open while the provider failed to hand out a number.
        flow = flow_factory(call_to="", provider_id="", status=FlowStatus.FAILED, failure_reason="provider_error")
        session = client.session
        session[SESSION_FLOW_KEY] = str(flow.pk)
        session.save()
        assert_json_error(client.post(url("complete"), **JSON), 502, "provider_error")
        response = client.post(url("complete"))
        page = response.content.decode()
        assert response.status_code == 502
        assert "The phone call service failed. Please start again." in page
        assert "callauth-number" not in page and "tel:" not in page
        assert '<input type="hidden" name="phone" value="+7 900 123-45-67">' in page  # start again

    def test_pending_flow_shows_no_error(self, client):
        start(client)
        assert 'class="callauth-error"' not in client.get(url("challenge")).content.decode()


@pytest.mark.parametrize(
    ("body", "code"),
    [("[1]", "invalid_request"), ("\x00", "invalid_request"), ('{"caller": []}', "invalid_phone")],
)
def test_sandbox_call_refuses_a_body_it_cannot_read(client: Client, body: str, code: str) -> None:
    # Found by Schemathesis: a broken body used to be taken as no body, and played the call.
    start(client)
    response = client.post(url("sandbox_call"), body, content_type="application/json", **JSON)
    assert_json_error(response, 400, code)
    assert the_flow(client).status == FlowStatus.PENDING


@pytest.mark.parametrize(
    ("status", "reason", "for_login", "for_link"),
    [
        (FlowStatus.USED, "", "This call was already used to log in.", "This call was already used to add the phone."),
        (FlowStatus.FAILED, FailureReason.NOT_ALLOWED, "This account cannot log in", "cannot be added to your account"),
        (
            FlowStatus.FAILED,
            FailureReason.CANCELLED,
            "A newer login was started",
            "A newer phone number is being added",
        ),
        (FlowStatus.FAILED, FailureReason.PHONE_MISMATCH, "from a different phone", "from a different phone"),
    ],
    ids=["already_used", "not_allowed", "cancelled", "phone_mismatch"],
)
def test_why_a_flow_cannot_be_finished_is_told_for_what_it_was_for(
    flow_factory: Any, status: str, reason: str, for_login: str, for_link: str
) -> None:
    # Adding a phone logs nobody in: its refusals must not speak of logging in.
    login = flow_problem(flow_factory(status=status, failure_reason=reason))
    link = flow_problem(flow_factory(status=status, failure_reason=reason, purpose=FlowPurpose.LINK))
    assert login.code == link.code
    assert for_login in str(login.message) and for_link in str(link.message)
    assert "log in" not in str(link.message)


# -- a wrong setting read at run time (gunicorn never runs manage.py check) -----------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("CALLAUTH_TELEFON_IP_TIMEOUT", "5"), ("CALLAUTH_TTL", "90"), ("CALLAUTH_WEBHOOK_BASE_URL", 5)],
)
def test_a_wrong_setting_is_a_clear_answer_and_asks_no_provider(client, telefon_ip_api, settings, caplog, name, value):
    setattr(settings, name, value)
    assert_json_error(start(client), 500, "misconfigured")
    assert not CallAuthFlow.objects.exists()
    assert len(telefon_ip_api.calls) == 0
    [record] = [r for r in caplog.records if r.name == "django_callauth" and r.levelname == "ERROR"]
    assert f"{name} must be " in record.getMessage()


# -- what every page of the app does -------------------------------------------------------

#: Every view of the app that a browser may be shown, as (method, URL name, URL kwargs).
PAGES = [
    ("post", "start", {}),
    ("get", "challenge", {}),
    ("get", "status", {}),
    ("post", "complete", {}),
    ("post", "sandbox_call", {}),
    ("get", "phones", {}),
    ("post", "phone_add", {}),
    ("post", "phone_remove", {"link_id": 1}),
    ("get", "link_challenge", {}),
    ("get", "link_status", {}),
    ("post", "link_complete", {}),
    ("post", "link_sandbox_call", {}),
]


class TestEveryPage:
    @pytest.mark.parametrize(("method", "name", "kwargs"), PAGES, ids=[name for _method, name, _kwargs in PAGES])
    def test_denies_being_framed_without_the_projects_middleware(self, client, alice, settings, method, name, kwargs):
        # A project without XFrameOptionsMiddleware: the login pages still refuse to be framed (clickjacking).
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("XFrameOptionsMiddleware")]
        client.force_login(alice)
        response = getattr(client, method)(url(name, **kwargs))
        assert response["X-Frame-Options"] == "DENY"

    @pytest.mark.parametrize("name", ["start", "phone_add", "sandbox_call"])
    def test_the_views_that_take_a_phone_mark_it_sensitive(self, client, alice, monkeypatch, name):
        # Django's error report then hides the field, whatever exception reporter filter the project uses.
        seen: list[object] = []

        def recording(request: Any) -> Any:
            seen.append(getattr(request, "sensitive_post_parameters", None))
            return request_data(request)

        for module in (login_views, phone_views, sandbox_views):
            monkeypatch.setattr(module, "request_data", recording)
        client.force_login(alice)
        start(client)  # a flow for the sandbox call
        seen.clear()
        client.post(url(name), {"phone": PHONE, "caller": PHONE}, **JSON)
        assert seen == [("caller",) if name == "sandbox_call" else ("phone",)]


class TestNothingUnboundedIsKept:
    """What a refused start keeps and shows is what a phone field holds, before any limit counts it."""

    def test_a_huge_phone_refused_keeps_only_what_the_field_holds(self, client):
        response = client.post(url("start"), {"phone": "9" * 2_000_000, "from": "/login/"})
        assert (response.status_code, response["Location"]) == (302, "/login/")
        kept = client.session[formstate.SESSION_KEY]
        assert (kept["phone"], kept["code"]) == ("9" * MAX_INPUT_LENGTH, "invalid_phone")
        assert len(client.session.encode(dict(client.session))) < 2_000

    @pytest.mark.parametrize("name", ["start", "phone_add"])
    def test_the_error_page_shows_only_what_the_field_holds(self, client, alice, name):
        client.force_login(alice)
        response = client.post(url(name), {"phone": "9" * 2_000_000})
        assert response.status_code == 400
        html = response.content.decode()
        assert f'value="{"9" * MAX_INPUT_LENGTH}"' in html
        assert len(html) < 50_000


# -- the login handler: another authentication system logs the call's user in (invariant 21) -----


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a login handler for one test, as an app's ready() does; Django's login() after it."""

    def install(handle: Any) -> None:
        monkeypatch.setattr(login_views, "login_handler", handle)

    return install


def pending_stage(request: Any, flow: CallAuthFlow, user: Any) -> Any:
    """Another system asks for a second factor first: nobody is logged in yet."""
    from django.shortcuts import redirect

    response = redirect("/second-factor/")
    response.set_cookie("stage", "1")
    return response


def test_a_step_the_handler_asks_for_first_is_where_the_login_goes(db: None, handler: Any, sent: Any) -> None:
    handler(pending_stage)
    client = Client()
    flow = sandbox_confirm(client)
    response = complete(client)
    assert response.status_code == 200
    assert response.json() == {"redirect": "/second-factor/"}
    assert response.cookies["stage"].value == "1"
    assert "_auth_user_id" not in client.session
    assert sent.of("logged_in") == []  # not yet: the other system logs in when its step is done
    flow.refresh_from_db()
    assert flow.status == FlowStatus.USED
    assert_json_error(complete(client), 400, "no_flow")  # one flow, one login


def test_a_step_the_handler_asks_for_first_without_javascript(db: None, handler: Any) -> None:
    handler(pending_stage)
    client = Client()
    sandbox_confirm(client)
    response = client.post(url("complete"))
    assert response.status_code == 302
    assert response["Location"] == "/second-factor/"
    assert "_auth_user_id" not in client.session


def test_a_page_the_handler_answers_after_logging_in(db: None, handler: Any) -> None:
    from django.contrib.auth import login
    from django.http import HttpResponse

    def page_after_login(request: Any, flow: CallAuthFlow, user: Any) -> Any:
        login(request, user)
        return HttpResponse("welcome")

    handler(page_after_login)
    client = Client()
    sandbox_confirm(client)
    assert complete(client).json() == {"redirect": "/"}
    assert "_auth_user_id" in client.session
    sandbox_confirm(client)
    response = client.post(url("complete"))
    assert response.status_code == 200
    assert response.content == b"welcome"


def test_a_handler_that_neither_logs_in_nor_redirects_fails_the_login(db: None, handler: Any) -> None:
    from django.http import HttpResponse

    handler(lambda request, flow, user: HttpResponse("nothing"))
    client = Client()
    sandbox_confirm(client)
    assert_json_error(complete(client), 503, "login_failed")
    assert "_auth_user_id" not in client.session
