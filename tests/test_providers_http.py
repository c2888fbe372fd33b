"""The HTTP client the built-in providers share (providers/http.py).

Its answers and failures are tried through each provider, against loopback fakes
(tests/provider_contract.py); here is what no provider request reaches on its own.
"""

from __future__ import annotations

import logging

import pytest
import responses

from django_callauth.providers import http
from django_callauth.providers.base import ProviderUnavailable
from tests.helpers import START_POST, TOKEN, RootLog


def test_a_request_whose_deadline_has_passed_is_not_sent(root_log: RootLog) -> None:
    client = http.HttpClient(
        vendor="telefon-ip", credential="API token", url_setting="CALLAUTH_TELEFON_IP_URL", secrets=(TOKEN,)
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.post(START_POST, json={})
        with pytest.raises(ProviderUnavailable) as info:
            client.request("POST", START_POST, f"POST {START_POST}", http.now() - 0.001)
        assert len(api.calls) == 0
    assert info.value.no_call_set_up  # never sent, so nothing was billed: the next provider may be asked
    assert str(info.value) == "telefon-ip request skipped: deadline passed."
    warnings = [r.getMessage() for r in root_log.records if r.levelno == logging.WARNING]
    assert warnings == [
        "telefon-ip POST https://api.telefon-ip.ru/api/v1/authcalls/***/reverse_auth_phone_post: "
        "no time left before the deadline"
    ]
