"""Secrets leaking into pages, logs, error reports, the admin or stored data (docs/security.rst, invariant 9).

telefon-ip's token, whatever the provider answers, and the webhook secret, which is
stored only as its hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

import django
import pytest
import requests
import responses
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import DatabaseError
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils.log import AdminEmailHandler

from django_callauth import flows
from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from tests.helpers import (
    JSON,
    PHONE,
    PHONE_FOR_PROVIDER,
    PROVIDER_ID,
    START_GET,
    START_POST,
    TOKEN,
    assert_json_error,
    call_webhook,
    check_answer,
    check_url,
    complete,
    start,
    start_answer,
    the_flow,
    url,
    webhook_path,
    webhook_secret,
)

pytestmark = pytest.mark.django_db


# == Invariant 9: secrets stay secret ========================================================================


def _assert_no_token(text: str) -> None:
    assert TOKEN not in text
    assert TOKEN.replace("-", "%2D") not in text


def _assert_no_token_stored() -> None:
    for row in CallAuthFlow.objects.values():
        for value in row.values():
            assert TOKEN not in str(value)
    for row in CallAuthPhone.objects.values():
        for value in row.values():
            assert TOKEN not in str(value)
    for session in Session.objects.all():
        assert TOKEN not in session.session_data
        assert TOKEN not in json.dumps(session.get_decoded(), default=str)


def _assert_no_token_logged(caplog) -> None:
    _assert_no_token(caplog.text)
    for record in caplog.records:
        _assert_no_token(record.getMessage())
        _assert_no_token(str(record.exc_text or ""))


# One failure of each kind that could carry the token (each of the client's kinds with the token in
# it: test_providers_telefon_ip.py::test_the_token_is_in_no_exception_traceback_or_log).
PROVIDER_FAILURES = {
    "http_401": dict(status=401, body=f"token {TOKEN} refused"),
    "http_500_echoing_the_url": dict(
        status=500, body=f"<h1>Error at /api/v1/authcalls/{TOKEN}/reverse_auth_phone_post</h1>"
    ),
    "redirect": dict(status=302, headers={"Location": f"https://evil.example/{TOKEN}/"}),
    "connection_error": dict(
        body=requests.ConnectionError(
            f"Max retries exceeded with url: /api/v1/authcalls/{TOKEN}/reverse_auth_phone_post"
        )
    ),
    "success_false": dict(json={"success": False, "error": f"token {TOKEN} is blocked", "data": {}}),
    "bad_id": dict(json=start_answer(provider_id=f"../{TOKEN}/x")),
    # And one answer of each other kind the client tells apart, none of which may be a 500
    # (invariant 10; each shape one layer down: test_providers_http.py, test_providers_telefon_ip.py).
    "data_string": dict(json={"success": True, "error": "", "data": "<b>x</b>"}),
    "json_list": dict(json=[1, 2, 3]),
    "success_yes": dict(json={**start_answer(), "success": "yes"}),
    "huge_body": dict(body="x" * 200_000),
    "html": dict(body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
    "http_400": dict(status=400, json={"success": False, "error": "id record not found", "data": {}}),
    "timeout": dict(body=requests.ConnectTimeout("timeout")),
    "os_error": dict(body=OSError("odd")),
}


class TestInvariant9SecretsStaySecret:
    def test_happy_path_never_shows_the_token_or_the_webhook_secret(self, client, telefon_ip_api, caplog, admin_client):
        caplog.set_level(logging.DEBUG)
        telefon_ip_api.post(
            START_POST, json=start_answer(url_image=f"https://api.telefon-ip.ru/api/v1/authcalls/{TOKEN}/qr/")
        )
        telefon_ip_api.get(check_url(), json=check_answer())
        bodies = [start(client).content, client.get(url("challenge")).content]
        path = webhook_path(telefon_ip_api)
        secret = webhook_secret(path)
        bodies.append(client.get(url("status"), **JSON).content)
        bodies.append(call_webhook(path).content)
        bodies.append(client.get(url("status"), **JSON).content)
        bodies.append(client.get(url("challenge")).content)
        flow = the_flow(client)
        response = complete(client)
        assert response.status_code == 200
        bodies.append(response.content)
        bodies.append(admin_client.get("/admin/callauth/callauthflow/").content)
        bodies.append(admin_client.get(f"/admin/callauth/callauthflow/{flow.pk}/change/").content)
        for body in bodies:
            text = body.decode()
            _assert_no_token(text)
            assert secret not in text
        _assert_no_token_stored()
        _assert_no_token_logged(caplog)
        # The webhook secret is stored only as its hash.
        flow.refresh_from_db()
        assert flow.webhook_secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        for value in CallAuthFlow.objects.filter(pk=flow.pk).values().get().values():
            assert secret not in str(value)
        assert secret not in caplog.text

    @pytest.mark.parametrize("failure", PROVIDER_FAILURES.values(), ids=PROVIDER_FAILURES.keys())
    @pytest.mark.parametrize("accept", ["application/json", "text/html"])
    def test_provider_errors_at_start(self, client, telefon_ip_api, caplog, failure, accept):
        caplog.set_level(logging.DEBUG)
        telefon_ip_api.add(responses.POST, START_POST, **failure)
        response = client.post(url("start"), {"phone": PHONE}, HTTP_ACCEPT=accept)
        assert response.status_code in (502, 503)
        if accept == "application/json":
            assert_json_error(response, response.status_code, response.json()["error"])
            assert response.json()["error"] in {"provider_error", "provider_unavailable", "provider_rejected"}
        else:
            assert 'class="callauth-error"' in response.content.decode()
        _assert_no_token(response.content.decode())
        for _header, value in response.items():
            _assert_no_token(value)
        _assert_no_token_stored()
        _assert_no_token_logged(caplog)
        # Nothing half-written: the flow is failed, and the browser holds no flow.
        flow = CallAuthFlow.objects.get()
        assert (flow.status, flow.failure_reason) == (FlowStatus.FAILED, FailureReason.PROVIDER_ERROR)
        assert SESSION_FLOW_KEY not in client.session
        assert len(telefon_ip_api.calls) == 1  # a start is never retried

    @pytest.mark.parametrize("failure", PROVIDER_FAILURES.values(), ids=PROVIDER_FAILURES.keys())
    def test_provider_errors_at_check(self, client, telefon_ip_api, caplog, failure, settings):
        caplog.set_level(logging.DEBUG)
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.add(responses.GET, check_url(), **failure)
        start(client)
        response = client.get(url("status"), **JSON)
        assert response.status_code == 200
        assert response.json()["status"] == "pending"
        finish = complete(client)
        assert_json_error(finish, 409, "not_confirmed")  # the check "I have called" asks for fails too
        _assert_no_token(response.content.decode() + finish.content.decode())
        _assert_no_token_stored()
        _assert_no_token_logged(caplog)


# == Invariants 9 and 16: what a failure tells the logs and the admins ========================================

#: The caller's number in every form it can take (+7…, 8…, 7…) shares these digits.
NATIONAL = PHONE[2:]


@pytest.fixture
def admins_mail(settings) -> Iterator[None]:
    """Admins set and an ``AdminEmailHandler`` (with its HTML report) on the root: every ERROR is mailed."""
    # Django 6.0 takes plain addresses and deprecates (name, address) pairs; 5.2 takes pairs only.
    settings.ADMINS = ["admin@site.example"] if django.VERSION >= (6, 0) else [("Admin", "admin@site.example")]
    handler = AdminEmailHandler(include_html=True)
    handler.setLevel(logging.ERROR)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


def _everything_told(root_log) -> str:
    """Every log line (tracebacks included) and every mail to the admins, text and HTML."""
    told = [root_log.text, *(record.getMessage() for record in root_log.records)]
    for message in mail.outbox:
        told += [message.subject, message.body, *(content for content, _type in message.alternatives)]
    return "\n".join(told)


class TestFailuresTellNoSecretAndNoPhone:
    def test_a_webhook_whose_database_fails_answers_503_and_tells_the_flow_only(
        self, client, telefon_ip_api, root_log, admins_mail, monkeypatch
    ):
        telefon_ip_api.post(START_POST, json=start_answer())
        start(client)
        flow = the_flow(client)
        path = webhook_path(telefon_ip_api)
        secret = webhook_secret(path)

        def database_down(*args, **kwargs):
            raise DatabaseError("server closed the connection unexpectedly")

        monkeypatch.setattr(CallAuthFlow.objects, "filter", database_down)
        provider = Client(raise_request_exception=False)
        response = provider.get(path, {"success": "True", "phone": PHONE_FOR_PROVIDER, "id": str(PROVIDER_ID)})

        assert_json_error(response, 503, "temporarily_unavailable")
        told = _everything_told(root_log)
        assert secret not in told
        assert NATIONAL not in told
        # The admins still learn of it, and of which flow it was.
        assert mail.outbox
        assert str(flow.pk) in mail.outbox[0].subject
        assert "DatabaseError" in mail.outbox[0].body

    def test_a_callback_whose_database_fails_answers_503(self, settings, root_log, monkeypatch):
        settings.CALLAUTH_PROVIDER = "sms_ru"
        settings.CALLAUTH_SMS_RU_API_ID = "api-id"

        def database_down(*args, **kwargs):
            raise DatabaseError("server closed the connection unexpectedly")

        monkeypatch.setattr(CallAuthFlow.objects, "filter", database_down)
        callback = reverse("callauth:callback", kwargs={"provider_name": "sms_ru"})
        response = Client(raise_request_exception=False).post(
            callback, {"data[0]": f"callcheck_status\n201737-542\n401\n1700000000\n{PHONE_FOR_PROVIDER}"}
        )
        assert_json_error(response, 503, "temporarily_unavailable")
        errors = [r.getMessage() for r in root_log.records if r.name == "django_callauth" and r.levelname == "ERROR"]
        assert errors == ["Callback 'sms_ru' failed; answered 503"]

    def test_a_view_failing_for_a_json_client_answers_json_and_is_reported_without_the_phone(
        self, root_log, admins_mail, monkeypatch
    ):
        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(flows, "start_flow", broken)
        browser = Client(raise_request_exception=False)
        response = browser.post(url("start"), {"phone": "8 900 123-45-67", "next": "/after/"}, **JSON)

        assert_json_error(response, 500, "server_error")
        # Reported as Django reports any 500: django.request's ERROR with the traceback, mailed.
        (error,) = [record for record in root_log.records if record.name == "django.request"]
        assert (error.levelname, error.getMessage(), error.exc_info[0]) == (
            "ERROR",
            "Internal Server Error: /callauth/start/",
            RuntimeError,
        )
        assert any("RuntimeError" in message.body and "a bug" in message.body for message in mail.outbox)
        assert NATIONAL not in _everything_told(root_log).replace(" ", "").replace("-", "")

    def test_error_trackers_hear_of_it_as_of_any_500(self, client, monkeypatch):
        # The test client re-raises what got_request_exception reports, as Sentry hears of it.
        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(flows, "flow_to_poll", broken)
        with pytest.raises(RuntimeError, match="a bug"):
            client.get(url("status"), **JSON)

    @pytest.mark.parametrize("exception", [Http404, PermissionDenied, SuspiciousOperation])
    def test_what_django_answers_itself_stays_djangos(self, monkeypatch, exception):
        def refusing(*args, **kwargs):
            raise exception("no")

        monkeypatch.setattr(flows, "flow_to_poll", refusing)
        response = Client(raise_request_exception=False).get(url("status"), **JSON)
        assert response.status_code in (400, 403, 404)

    def test_a_browser_gets_the_sites_500_page(self, root_log, monkeypatch):
        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(flows, "flow_to_poll", broken)
        response = Client(raise_request_exception=False).get(url("status"))
        assert response.status_code == 500
        assert response["Content-Type"].startswith("text/html")
        assert [r.getMessage() for r in root_log.records if r.name == "django.request"] == [
            "Internal Server Error: /callauth/status/"
        ]
