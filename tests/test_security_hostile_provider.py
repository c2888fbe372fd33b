"""Hostile or broken answers from the provider (docs/security.rst, invariant 10).

Nothing the provider sends is rendered as HTML (the ``tel:`` link and the QR code are built
from the validated number). That no answer, however odd, gives a 500 is played with
test_security_leaks.py's PROVIDER_FAILURES, at the start and at the check.
"""

from __future__ import annotations

import re

import pytest

from django_callauth.models import CallAuthFlow, FailureReason, FlowStatus
from tests.helpers import (
    CALL_TO,
    JSON,
    PHONE,
    START_POST,
    assert_json_error,
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
