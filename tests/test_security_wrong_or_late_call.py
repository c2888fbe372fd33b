"""A call from another phone, an unclear answer, or a call too late (docs/security.rst, invariant 3).

Confirmed means the provider reported a call from exactly the requested phone, in time.
Time is moved by the ``clock`` fixture, never by sleeping.
"""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import Client

from django_callauth.conf import app_settings
from django_callauth.models import CallAuthFlow, FailureReason, FlowStatus
from django_callauth.providers.smsc import provider_id_for
from tests.helpers import (
    JSON,
    OTHER_PHONE,
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
    # Every caller that is not exactly the phone: test_flows.py::test_apply_report_any_other_caller_fails_the_flow.
    def test_mismatch_is_final(self, clock, client, telefon_ip_api, settings):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(OTHER_PHONE_FOR_PROVIDER))
        telefon_ip_api.get(check_url(), json=check_answer(PHONE_FOR_PROVIDER))
        start(client)
        assert poll(client) == "failed"
        assert the_flow(client).failure_reason == FailureReason.PHONE_MISMATCH
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

    # One of each kind (every shape: test_providers_telefon_ip.py::test_check_pending_shapes).
    @pytest.mark.parametrize(
        "answer",
        [
            {"success": True, "error": "", "data": {"id": PROVIDER_ID}},
            {"success": False, "error": "", "data": {"phone": PHONE_FOR_PROVIDER, "id": PROVIDER_ID}},
            {"success": True, "error": "", "data": {"phone": PHONE_FOR_PROVIDER, "id": OTHER_PROVIDER_ID}},
            {"success": True, "error": "", "data": {"phone": [PHONE_FOR_PROVIDER], "id": PROVIDER_ID}},
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


# == Invariant 3 with SMSC: its callback names only the caller, so one live flow per phone ==========


def smsc_call(client, fake_smsc, call_to: str, caller: str = PHONE):
    """The signed handler callback SMSC sends for a call from ``caller`` to ``call_to``."""
    form = fake_smsc.callback_for(call_to, caller)
    assert form is not None
    return client.post(url("callback", provider_name="smsc"), dict(form))


class TestInvariant3SmscOneLiveFlowPerPhone:
    def test_a_second_browser_cannot_start_a_flow_for_a_phone_with_a_live_one(self, smsc, fake_smsc):
        victim, attacker = Client(), Client()
        started = start(victim).json()
        assert_json_error(start(attacker), 503, "provider_unavailable")
        assert [r.action for r in fake_smsc.requests] == ["sys/wait_call.php"]  # SMSC was asked once
        assert CallAuthFlow.objects.filter(provider="smsc", status=FlowStatus.PENDING).count() == 1

        assert smsc_call(Client(), fake_smsc, started["call_to"]).status_code == 200
        assert poll(victim) == "confirmed"
        assert_json_error(attacker.get(url("status"), **JSON), 400, "no_flow")  # his start left him none
        assert complete(victim).status_code == 200
        assert_json_error(complete(attacker), 400, "no_flow")
        assert logged_in_phone(victim) == PHONE
        assert logged_in_phone(attacker) is None

    def test_the_attackers_flow_first_keeps_the_victim_out_never_logs_him_in(self, smsc, fake_smsc):
        attacker, victim = Client(), Client()
        shown = start(attacker).json()
        assert_json_error(start(victim), 503, "provider_unavailable")
        # She never saw the attacker's number; a call to it by her (tricked) is his flow's only chance.
        assert fake_smsc.callback_for(shown["call_to"], OTHER_PHONE) is None
        assert poll(attacker) == "pending"
        assert logged_in_phone(attacker) is None

    def test_with_failover_the_second_browser_goes_to_the_next_provider(self, smsc, fake_smsc, telefon_ip_api):
        smsc.CALLAUTH_PROVIDER = ["smsc", "telefon_ip"]
        telefon_ip_api.add_passthru(fake_smsc.base_url)
        telefon_ip_api.post(START_POST, json=start_answer())
        victim, attacker = Client(), Client()
        started = start(victim).json()
        assert start(attacker).status_code == 201
        assert list(CallAuthFlow.objects.order_by("created_at").values_list("provider", flat=True)) == [
            "smsc",
            "telefon_ip",
        ]
        assert smsc_call(Client(), fake_smsc, started["call_to"]).status_code == 200
        assert poll(victim) == "confirmed"
        assert poll(attacker) == "pending"  # telefon-ip names the number called: her call is not his
        assert logged_in_phone(attacker) is None

    def test_a_flow_that_ended_frees_the_phone_and_its_call_confirms_no_later_flow(self, smsc, fake_smsc):
        victim, later = Client(), Client()
        first = start(victim).json()
        assert smsc_call(Client(), fake_smsc, first["call_to"]).status_code == 200
        assert complete(victim).status_code == 200
        assert start(later).status_code == 201
        assert poll(later) == "pending"  # the call the ended flow saw confirms no later one
        assert logged_in_phone(later) is None

    def test_a_cancelled_flow_frees_the_phone(self, smsc, fake_smsc):
        start(victim := Client())
        assert start(victim, OTHER_PHONE).status_code == 201  # her first flow is cancelled
        assert start(Client()).status_code == 201

    def test_an_old_flow_ending_after_its_time_never_frees_a_later_flows_phone(self, smsc, fake_smsc, clock):
        start(victim := Client())
        clock.advance(fake_smsc.lifetime + 1)
        # The cache's own expiry of her lock (real time, which ``clock`` does not move).
        caches[app_settings.CACHE].delete("callauth:smsc:live:" + provider_id_for(PHONE))
        assert start(Client()).status_code == 201
        assert poll(victim) == "expired"  # her flow ends now, long after its time
        assert_json_error(start(Client()), 503, "provider_unavailable")
