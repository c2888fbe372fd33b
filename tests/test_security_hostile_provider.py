"""Hostile or broken answers from the provider (docs/security.rst, invariant 10).

Nothing the provider sends is rendered as HTML (the ``tel:`` link and the QR code are built
from the validated number), and no answer, however odd, gives a 500.
"""

from __future__ import annotations

import re

import pytest
import requests
import responses

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, FailureReason, FlowStatus
from tests.helpers import (
    CALL_TO,
    JSON,
    PHONE,
    START_POST,
    assert_json_error,
    robust_client,
    start_answer,
    url,
)

pytestmark = pytest.mark.django_db


# == Invariant 10: nothing from the provider is rendered as HTML =========================================


class TestInvariant10NoProviderHtml:
    def test_url_link_and_url_image_never_reach_the_page(self, client, telefon_ip_api):
        telefon_ip_api.post(
            START_POST,
            json=start_answer(
                url_link="<a href='tel:89644078713' id='evil-link'>Позвони</a><script>alert('xss')</script>",
                url_image="https://evil.example/qr.png?<img src=x onerror=alert(1)>",
            ),
        )
        payload = client.post(url("start"), {"phone": PHONE}, **JSON)
        page = client.get(url("challenge"))
        for text in (payload.content.decode("unicode_escape"), page.content.decode()):
            for leaked in ("89644078713", "9644078713", "evil-link", "Позвони", "alert", "evil.example", "onerror"):
                assert leaked not in text
        html = page.content.decode()
        assert f'href="tel:{CALL_TO}"' in html
        assert re.search(r'<img class="callauth-qr" src="data:image/svg\+xml', html)
        assert re.findall(r'href="(tel:[^"]*)"', html) == [f"tel:{CALL_TO}"]

    # Every shape refused: test_providers_telefon_ip.py::test_start_refuses_an_unusable_id_or_number_to_call.
    @pytest.mark.parametrize(
        "auth_phone", ["<script>alert(1)</script>", "javascript:alert(1)", "79644115786<b>", "78091234567"]
    )
    @pytest.mark.parametrize("accept", ["application/json", "text/html"])
    def test_invalid_number_to_call_is_a_clean_error(self, client, telefon_ip_api, auth_phone, accept):
        telefon_ip_api.post(START_POST, json=start_answer(auth_phone=auth_phone))
        response = client.post(url("start"), {"phone": PHONE}, HTTP_ACCEPT=accept)
        assert response.status_code == 502
        if accept == "application/json":
            assert_json_error(response, 502, "provider_error")
        else:
            html = response.content.decode()
            assert "<script>alert" not in html and "javascript:" not in html and "<b>" not in html
            assert "tel:" not in html
        flow = CallAuthFlow.objects.get()
        assert (flow.status, flow.failure_reason, flow.call_to) == (FlowStatus.FAILED, FailureReason.PROVIDER_ERROR, "")
        assert_json_error(client.get(url("challenge"), **JSON), 400, "no_flow")


# One answer of each kind the shared client tells apart (each shape, one layer down:
# test_providers_http.py's status, body and network cases, test_providers_telefon_ip.py's).
PROVIDER_ANSWERS = {
    "data_string": dict(json={"success": True, "error": "", "data": "<b>x</b>"}),
    "json_list": dict(json=[1, 2, 3]),
    "id_path": dict(json=start_answer(provider_id="../../x")),
    "success_yes": dict(json={**start_answer(), "success": "yes"}),
    "huge_body": dict(body="x" * 200_000),
    "html": dict(body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
    "http_301": dict(status=301, headers={"Location": "https://example.com/"}),
    "http_400": dict(status=400, json={"success": False, "error": "id record not found", "data": {}}),
    "http_504": dict(status=504, body=""),
    "timeout": dict(body=requests.ConnectTimeout("timeout")),
    "os_error": dict(body=OSError("odd")),
}


class TestNeverA500FromTheProvider:
    @pytest.mark.parametrize("answer", PROVIDER_ANSWERS.values(), ids=PROVIDER_ANSWERS.keys())
    @pytest.mark.parametrize("accept", ["application/json", "text/html"])
    def test_start(self, telefon_ip_api, answer, accept):
        telefon_ip_api.add(responses.POST, START_POST, **answer)
        browser = robust_client()
        response = browser.post(url("start"), {"phone": PHONE}, HTTP_ACCEPT=accept)
        assert response.status_code in (201, 302, 502, 503)
        if response.status_code >= 500 and accept == "application/json":
            assert_json_error(response, response.status_code, response.json()["error"])
        if response.status_code in (502, 503):
            assert not CallAuthFlow.objects.filter(status=FlowStatus.PENDING).exists()
            assert SESSION_FLOW_KEY not in browser.session
