"""Secrets leaking into pages, logs, error reports, the admin or stored data (docs/security.rst, invariant 9).

telefon-ip's token, whatever the provider answers, and the webhook secret, which is
stored only as its hash.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
import requests
import responses
from django.contrib.sessions.models import Session

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from tests.helpers import (
    JSON,
    PHONE,
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


PROVIDER_FAILURES = {
    "http_401": dict(status=401, body=f"token {TOKEN} refused"),
    "http_402": dict(status=402, json={"success": False, "error": f"pay for {TOKEN}", "data": {}}),
    "http_429": dict(status=429, body="slow down"),
    "http_500_echoing_the_url": dict(
        status=500, body=f"<h1>Error at /api/v1/authcalls/{TOKEN}/reverse_auth_phone_post</h1>"
    ),
    "http_503": dict(status=503, body=""),
    "redirect": dict(status=302, headers={"Location": f"https://evil.example/{TOKEN}/"}),
    "connection_error": dict(
        body=requests.ConnectionError(
            "HTTPSConnectionPool(host='api.telefon-ip.ru', port=443): Max retries exceeded with url: "
            f"/api/v1/authcalls/{TOKEN}/reverse_auth_phone_post"
        )
    ),
    "timeout": dict(body=requests.ReadTimeout(f"Read timed out: https://api.telefon-ip.ru/api/v1/authcalls/{TOKEN}/")),
    "success_false": dict(json={"success": False, "error": f"token {TOKEN} is blocked", "data": {}}),
    "not_json": dict(body=f"proxy error for https://api.telefon-ip.ru/api/v1/authcalls/{TOKEN}/"),
    "bad_auth_phone": dict(json=start_answer(auth_phone=f"7{TOKEN}")),
    "bad_id": dict(json=start_answer(provider_id=f"../{TOKEN}/x")),
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
        assert finish.status_code < 500
        _assert_no_token(response.content.decode() + finish.content.decode())
        _assert_no_token_stored()
        _assert_no_token_logged(caplog)
