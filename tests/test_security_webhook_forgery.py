"""Forged, replayed, late and early webhooks (docs/security.rst, invariant 2).

The webhook never logs anyone in: a wrong secret writes nothing and asks the provider
nothing, and even a right one only makes the flow eligible for one check of our stored id
(made in the webhook's own request).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from django_callauth.models import FlowStatus
from tests.fake_sms_ru import FakeSmsRu
from tests.helpers import (
    OTHER_PHONE,
    OTHER_PHONE_FOR_PROVIDER,
    OTHER_PROVIDER_ID,
    PHONE,
    PHONE_FOR_PROVIDER,
    PROVIDER_ID,
    START_POST,
    assert_json_error,
    call_webhook,
    check_answer,
    check_calls,
    check_url,
    complete,
    logged_in_phone,
    poll,
    snapshot,
    start,
    start_answer,
    the_flow,
    url,
    webhook_path,
    webhook_secret,
)

pytestmark = pytest.mark.django_db


# == Invariant 2: the webhook never logs anyone in; forged webhooks change nothing =====================


@pytest.fixture
def two_flows(client, telefon_ip_api):
    """The victim's webhook-mode flow in ``client``, and someone else's in another browser."""
    telefon_ip_api.post(START_POST, json=start_answer())
    telefon_ip_api.post(START_POST, json=start_answer(OTHER_PROVIDER_ID, auth_phone="79644115787"))
    telefon_ip_api.get(check_url(), json=check_answer())
    telefon_ip_api.get(check_url(OTHER_PROVIDER_ID), json=check_answer(OTHER_PHONE_FOR_PROVIDER, OTHER_PROVIDER_ID))
    assert start(client).status_code == 201
    other = Client()
    assert start(other, OTHER_PHONE).status_code == 201
    mine, theirs = the_flow(client), the_flow(other)
    assert mine.provider_id == str(PROVIDER_ID) and theirs.provider_id == str(OTHER_PROVIDER_ID)
    return mine, webhook_path(telefon_ip_api, 0), theirs, webhook_path(telefon_ip_api, 1)


def _with_secret(path: str, secret: str) -> str:
    parts = path.rstrip("/").split("/")
    parts[-1] = secret
    return "/".join(parts) + "/"


def _with_flow_id(path: str, flow_id: str) -> str:
    parts = path.rstrip("/").split("/")
    parts[-2] = flow_id
    return "/".join(parts) + "/"


class TestInvariant2Webhook:
    def assert_nothing_happens(self, client, telefon_ip_api, before, response, status=None) -> None:
        if status is not None:
            assert response.status_code == status
        assert response.status_code < 500
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == 2  # the two starts; the webhook asked nobody
        # And the owner's next poll has nothing to verify: no paid check.
        assert poll(client) == "pending"
        assert len(telefon_ip_api.calls) == 2
        assert logged_in_phone(client) is None

    def test_random_secret(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(_with_secret(path, "A" * 43))
        assert response.json()["error"] == "not_found"
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    def test_right_flow_wrong_secret(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        secret = webhook_secret(path)
        tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        before = snapshot()
        # One near miss (every kind: test_tokens.py::test_verify_refuses_a_near_miss), then the hash itself.
        assert call_webhook(_with_secret(path, tampered)).status_code == 404
        response = call_webhook(_with_secret(path, hashlib.sha256(secret.encode()).hexdigest()))
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    def test_someone_elses_flow_id_with_my_secret(self, client, telefon_ip_api, two_flows):
        _, path, theirs, _ = two_flows
        before = snapshot()
        response = call_webhook(
            _with_flow_id(path, str(theirs.pk)), phone=OTHER_PHONE_FOR_PROVIDER, id=str(OTHER_PROVIDER_ID)
        )
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    # Every spelling and shape: test_providers_telefon_ip.py::test_webhook_success_decides_whether_there_is_a_caller.
    @pytest.mark.parametrize(
        "report", [{"success": "False"}, {"phone": None}, {"phone": "+7900"}, {"id": str(OTHER_PROVIDER_ID)}]
    )
    def test_a_webhook_naming_no_caller_or_another_id_changes_nothing(self, client, telefon_ip_api, two_flows, report):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(path, **report)
        self.assert_nothing_happens(client, telefon_ip_api, before, response)

    def test_mismatched_phone_is_never_trusted_only_verified(self, client, telefon_ip_api, two_flows):
        phone = OTHER_PHONE_FOR_PROVIDER
        # The webhook's phone decides nothing: the flow only becomes eligible for one
        # check of OUR stored id, made at once, and the provider's check answer (our phone) decides.
        mine, path, _, _ = two_flows
        response = call_webhook(path, phone=phone)
        assert response.status_code == 200
        assert [c.request.url for c in telefon_ip_api.calls[2:]] == [check_url()]
        mine.refresh_from_db()
        assert (mine.status, mine.caller) == (FlowStatus.CONFIRMED, PHONE)
        assert logged_in_phone(client) is None
        assert poll(client) == "confirmed"
        assert len(telefon_ip_api.calls) == 3  # the poll asked nothing more

    def test_replay_after_use(self, client, telefon_ip_api, two_flows):
        mine, path, _, _ = two_flows
        assert call_webhook(path).status_code == 200
        assert poll(client) == "confirmed"
        assert complete(client).status_code == 200
        calls, before = len(telefon_ip_api.calls), snapshot()
        mine.refresh_from_db()
        assert mine.status == FlowStatus.USED
        for _ in range(2):
            assert call_webhook(path).status_code == 200  # idempotent: the provider may retry
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == calls

    def test_after_expiry(self, clock, client, telefon_ip_api, two_flows):
        mine, path, _, _ = two_flows
        clock.advance(121)
        before = snapshot()
        response = call_webhook(path)
        assert response.status_code < 500
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == 2
        # The poll just expires it, without paying for a check.
        assert poll(client) == "expired"
        assert len(telefon_ip_api.calls) == 2
        assert_json_error(complete(client), 410, "expired")

    def test_webhook_never_logs_anyone_in(self, client, telefon_ip_api, two_flows, django_user_model):
        _, path, _, _ = two_flows
        sessions = Session.objects.count()
        caller = Client()
        response = caller.get(path + f"?success=True&phone={PHONE_FOR_PROVIDER}&id={PROVIDER_ID}")
        assert response.status_code == 200
        assert "sessionid" not in response.cookies
        assert Session.objects.count() == sessions
        assert logged_in_phone(caller) is None
        assert logged_in_phone(client) is None
        assert not django_user_model.objects.exists()

    def test_unverified_webhook_confirms_but_still_logs_nobody_in(
        self, client, telefon_ip_api, two_flows, settings, django_user_model
    ):
        settings.CALLAUTH_WEBHOOK_VERIFY = False
        mine, path, _, _ = two_flows
        caller = Client()
        assert caller.get(path + f"?success=True&phone={PHONE_FOR_PROVIDER}&id={PROVIDER_ID}").status_code == 200
        mine.refresh_from_db()
        assert mine.status == FlowStatus.CONFIRMED and mine.user is None
        assert logged_in_phone(caller) is None
        assert logged_in_phone(client) is None
        assert not django_user_model.objects.exists()
        assert check_calls(telefon_ip_api) == []
        assert_json_error(complete(caller), 400, "no_flow")


# == Account-wide callbacks (sms.ru): their URL carries no secret, so anyone may send one ==============


def sms_ru_callback(form: list[tuple[str, str]]) -> Any:
    """A POST to sms.ru's account-wide callback, from whoever sends it."""
    path = url("callback", provider_name="sms_ru")
    return Client().post(path, urlencode(form), content_type="application/x-www-form-urlencoded")


def forged(fake: FakeSmsRu, check_id: str) -> list[tuple[str, str]]:
    """A callback reporting a call to ``check_id`` that nobody made, without the hash only sms.ru can make."""
    return [(key, value) for key, value in fake.callback_form(check_id) if key != "hash"]


def status_checks(fake: FakeSmsRu) -> int:
    return len([asked for asked in fake.requests if asked.action == "callcheck/status"])


class TestAccountCallbackForgery:
    @pytest.fixture(autouse=True)
    def _numbers_live_their_300_seconds(self, sms_ru):
        del sms_ru.CALLAUTH_TTL  # unset, as by default: a flow lasts as long as sms.ru's number

    def test_a_forged_callback_costs_at_most_one_check_in_a_flows_life(self, clock, client, sms_ru, fake_sms_ru):
        start(client)
        assert the_flow(client).lifetime == 300
        assert sms_ru_callback(forged(fake_sms_ru, the_flow(client).provider_id)).content == b"100"
        for _ in range(310):  # a poll every second, past the flow's 300 s
            poll(client)
            clock.advance(1)
        assert status_checks(fake_sms_ru) == 1
        assert the_flow(client).status == FlowStatus.EXPIRED

    def test_a_forged_early_callback_lets_no_late_call_in(self, clock, client, sms_ru, fake_sms_ru):
        sms_ru.CALLAUTH_SIGNUP = True  # a confirmed call would log in
        started = start(client).json()
        check_id = the_flow(client).provider_id
        sms_ru_callback(forged(fake_sms_ru, check_id))
        assert poll(client) == "pending"  # its one check saw no call
        # Past our deadline, within what was the verify grace; sms.ru (the fake, on real
        # seconds) still takes the call and sends its signed callback.
        clock.advance(305)
        fake_sms_ru.make_call(started["call_to"], PHONE)
        assert sms_ru_callback(fake_sms_ru.callback_form(check_id)).content == b"100"
        assert_json_error(complete(client), 410, "expired")
        assert logged_in_phone(client) is None
        assert the_flow(client).status == FlowStatus.EXPIRED
        assert status_checks(fake_sms_ru) == 1


# == What "I have called" may cost where the provider reports calls (invariant 8) ==========================


class TestIHaveCalledCost:
    def test_pressing_every_second_for_a_minute_in_webhook_mode(self, clock, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(None))  # no call came, no webhook either
        assert start(client).status_code == 201
        for _ in range(60):
            assert_json_error(complete(client), 409, "not_confirmed")
            clock.advance(1)
        assert len(check_calls(telefon_ip_api)) == 3  # flows.refresh.CALLED_CHECKS
