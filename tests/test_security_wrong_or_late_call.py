"""A call from another phone, an unclear answer, or a call too late (docs/security.rst, invariant 3).

Confirmed means the provider reported a call from exactly the requested phone, in time.
Time is moved by the ``clock`` fixture, never by sleeping.
"""

from __future__ import annotations

import pytest

from django_callauth.models import FailureReason, FlowStatus
from tests.helpers import (
    JSON,
    OTHER_PHONE_FOR_PROVIDER,
    OTHER_PROVIDER_ID,
    PHONE,
    PHONE_FOR_PROVIDER,
    PROVIDER_ID,
    START_GET,
    START_POST,
    assert_json_error,
    call_webhook,
    check_answer,
    check_calls,
    check_url,
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


# == Invariant 3: confirmed means exactly this phone, in time =========================================


class TestInvariant3ExactPhoneInTime:
    @pytest.mark.parametrize("caller", [OTHER_PHONE_FOR_PROVIDER, "79001234568", "+79007654321"])
    def test_check_answering_another_phone_fails_the_flow(self, client, telefon_ip_api, settings, caller):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(caller))
        start(client)
        assert poll(client) == "failed"
        flow = the_flow(client)
        assert flow.failure_reason == FailureReason.PHONE_MISMATCH
        assert flow.caller != PHONE and flow.caller.startswith("+7")
        assert_json_error(complete(client), 403, "phone_mismatch")
        assert logged_in_phone(client) is None

    def test_mismatch_is_final(self, clock, client, telefon_ip_api, settings):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(OTHER_PHONE_FOR_PROVIDER))
        telefon_ip_api.get(check_url(), json=check_answer(PHONE_FOR_PROVIDER))
        start(client)
        assert poll(client) == "failed"
        clock.advance(10)
        assert poll(client) == "failed"
        assert len(check_calls(telefon_ip_api)) == 1
        assert_json_error(complete(client), 403, "phone_mismatch")
        assert logged_in_phone(client) is None

    def test_webhook_then_check_answering_another_phone(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(OTHER_PHONE_FOR_PROVIDER))
        start(client)
        # The webhook claims the right phone; the check (the truth) says otherwise.
        assert call_webhook(webhook_path(telefon_ip_api)).status_code == 200
        assert poll(client) == "failed"
        assert_json_error(complete(client), 403, "phone_mismatch")
        assert logged_in_phone(client) is None

    @pytest.mark.parametrize(
        "answer",
        [
            {"success": True, "error": "", "data": {"phone": "", "id": PROVIDER_ID}},
            {"success": True, "error": "", "data": {"phone": None, "id": PROVIDER_ID}},
            {"success": True, "error": "", "data": {"id": PROVIDER_ID}},
            {"success": False, "error": "", "data": {"phone": PHONE_FOR_PROVIDER, "id": PROVIDER_ID}},
            {"success": True, "error": "", "data": {"phone": PHONE_FOR_PROVIDER, "id": OTHER_PROVIDER_ID}},
            {
                "success": True,
                "error": "",
                "data": {"phone": PHONE_FOR_PROVIDER, "id": PROVIDER_ID, "status": "expired"},
            },
            {"success": True, "error": "", "data": {"phone": PHONE_FOR_PROVIDER + "0", "id": PROVIDER_ID}},
            {"success": True, "error": "", "data": {"phone": [PHONE_FOR_PROVIDER], "id": PROVIDER_ID}},
            {"success": True, "error": "", "data": []},
            {"success": "yes", "error": "", "data": {"phone": PHONE_FOR_PROVIDER, "id": PROVIDER_ID}},
        ],
    )
    def test_missing_or_unclear_phone_never_confirms(self, client, telefon_ip_api, settings, answer):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=answer)
        start(client)
        assert poll(client) == "pending"
        assert len(check_calls(telefon_ip_api)) == 1
        assert_json_error(complete(client), 409, "not_confirmed")
        assert logged_in_phone(client) is None

    def test_late_sandbox_call_after_expiry(self, clock, client):
        start(client)
        clock.advance(120)
        assert client.post(url("sandbox_call"), **JSON).json()["status"] == "expired"
        assert the_flow(client).status == FlowStatus.EXPIRED
        assert_json_error(complete(client), 410, "expired")
        assert logged_in_phone(client) is None

    def test_late_call_in_check_mode_is_not_even_asked_about(self, clock, client, telefon_ip_api, settings):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer())
        start(client)
        clock.advance(121)
        assert poll(client) == "expired"
        assert_json_error(complete(client), 410, "expired")
        assert check_calls(telefon_ip_api) == []
        assert logged_in_phone(client) is None

    def test_call_reported_in_time_and_verified_late_counts(self, clock, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer())
        start(client)
        clock.advance(115)
        assert call_webhook(webhook_path(telefon_ip_api)).status_code == 200
        clock.advance(10)  # the poll comes after the deadline
        assert poll(client) == "confirmed"
        assert complete(client).status_code == 200
        assert logged_in_phone(client) == PHONE

    def test_confirmed_flow_must_be_finished_within_the_window(self, clock, client):
        sandbox_confirm(client)
        clock.advance(301)
        assert_json_error(complete(client), 410, "expired")
        assert logged_in_phone(client) is None
