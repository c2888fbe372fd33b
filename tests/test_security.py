"""Attacks on the invariants of docs/security.rst: one class per invariant, each test trying to break it.

Invariant 4's real races (threads on PostgreSQL) and invariant 8 (cost limits) are tested
elsewhere; here "one flow, one login" is tried through the views. Time is moved by editing
timestamps in the database, never by sleeping.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import responses
from django.contrib.auth import authenticate, user_logged_in
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import Client, RequestFactory
from django.urls import reverse

from django_callauth.backends import CallAuthBackend
from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from django_callauth.phones import format_phone
from tests.helpers import (
    CALL_TO,
    JSON,
    OTHER_PHONE,
    PHONE,
    PHONE_FOR_PROVIDER,
    PROVIDER_ID,
    START_GET,
    START_POST,
    TOKEN,
    assert_json_error,
    check_answer,
    check_url,
    logged_in_phone,
    move_time,
    sandbox_confirm,
    start,
    start_answer,
    the_flow,
    url,
)

pytestmark = pytest.mark.django_db

OTHER_PHONE_FOR_PROVIDER = "89007654321"

OTHER_PROVIDER_ID = 555001


NO_FLOW = "There is no login by phone call in progress in this browser. Enter your phone number to start."
PHONE_MISMATCH = "The call came from a different phone than the number you entered. Call from that phone."


# -- helpers ---------------------------------------------------------------------


def snapshot() -> list[dict]:
    """Every flow row, every column: "writes nothing" means this does not change."""
    return list(CallAuthFlow.objects.order_by("pk").values())


def check_calls(rsps) -> list:
    return [call for call in rsps.calls if "/reverse_auth_phone_check/" in call.request.url]


def webhook_path(rsps, index: int = 0) -> str:
    starts = [call for call in rsps.calls if call.request.url.endswith("/reverse_auth_phone_post")]
    return urlsplit(json.loads(starts[index].request.body)["webhook"]).path


def call_webhook(path: str, method: str = "get", **params):
    query = {"success": "True", "phone": PHONE_FOR_PROVIDER, "id": str(PROVIDER_ID), **params}
    query = {key: value for key, value in query.items() if value is not None}
    return getattr(Client(), method)(path + "?" + urlencode(query))


# == Invariant 1: only the browser that started a flow can finish it ==========================


class TestInvariant1OnlyTheStartingBrowser:
    def test_second_browser_sees_no_flow(self, client):
        flow = sandbox_confirm(client)
        intruder = Client()
        assert_json_error(intruder.get(url("challenge"), **JSON), 400, "no_flow", NO_FLOW)
        assert_json_error(intruder.get(url("status"), **JSON), 400, "no_flow", NO_FLOW)
        assert_json_error(intruder.post(url("complete"), **JSON), 400, "no_flow", NO_FLOW)
        assert intruder.get(url("challenge")).status_code == 400
        assert flow.call_to not in intruder.get(url("challenge")).content.decode()
        assert logged_in_phone(intruder) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED
        # The owner is unaffected and still finishes.
        assert client.post(url("complete"), **JSON).status_code == 200
        assert logged_in_phone(client) == PHONE

    def test_second_browser_presenting_the_flow_id(self, client):
        flow = sandbox_confirm(client)
        flow_id = str(flow.pk)
        intruder = Client()
        intruder.cookies[SESSION_FLOW_KEY] = flow_id
        for name in ("flow", "flow_id", "id", SESSION_FLOW_KEY, "callauth_flow"):
            assert_json_error(intruder.get(url("challenge") + f"?{name}={flow_id}", **JSON), 400, "no_flow")
            assert_json_error(intruder.get(url("status") + f"?{name}={flow_id}", **JSON), 400, "no_flow")
            assert_json_error(intruder.post(url("complete") + f"?{name}={flow_id}", **JSON), 400, "no_flow")
            assert_json_error(intruder.post(url("complete"), {name: flow_id}, **JSON), 400, "no_flow")
            assert_json_error(
                intruder.post(url("complete"), json.dumps({name: flow_id}), content_type="application/json", **JSON),
                400,
                "no_flow",
            )
        assert_json_error(intruder.post(url("complete"), HTTP_X_CALLAUTH_FLOW=flow_id, **JSON), 400, "no_flow")
        assert_json_error(intruder.post(url("sandbox_call"), {"flow": flow_id}, **JSON), 400, "no_flow")
        assert logged_in_phone(intruder) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED and flow.user is None

    def test_second_browser_cannot_confirm_someone_elses_flow_in_the_sandbox(self, client):
        start(client)
        intruder = Client()
        assert_json_error(intruder.post(url("sandbox_call"), **JSON), 400, "no_flow")
        assert the_flow(client).status == FlowStatus.PENDING

    def test_own_flow_for_the_same_phone_does_not_borrow_the_confirmation(self, client):
        victim_flow = sandbox_confirm(client)
        intruder = Client()
        assert start(intruder, PHONE).status_code == 201
        assert_json_error(intruder.post(url("complete"), **JSON), 409, "not_confirmed")
        assert logged_in_phone(intruder) is None
        victim_flow.refresh_from_db()
        assert victim_flow.status == FlowStatus.CONFIRMED

    def test_second_browser_knowing_the_webhook_url(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer())
        start(client)
        path = webhook_path(telefon_ip_api)
        intruder = Client()
        assert intruder.get(path + f"?success=True&phone={PHONE_FOR_PROVIDER}&id={PROVIDER_ID}").status_code == 200
        assert_json_error(intruder.get(url("status"), **JSON), 400, "no_flow")
        assert_json_error(intruder.post(url("complete"), **JSON), 400, "no_flow")
        assert logged_in_phone(intruder) is None
        assert check_calls(telefon_ip_api) == []
        # Only the owner's own poll verifies, and only the owner finishes.
        assert client.get(url("status"), **JSON).json()["status"] == "confirmed"
        assert client.post(url("complete"), **JSON).status_code == 200
        assert logged_in_phone(client) == PHONE
        assert logged_in_phone(intruder) is None

    def test_tampered_session_values_find_no_flow(self, client):
        flow = sandbox_confirm(client)
        for value in [12345, [str(flow.pk)], {"id": str(flow.pk)}, str(flow.pk).upper() + "x", "", str(uuid.uuid4())]:
            other = Client()
            session = other.session
            session[SESSION_FLOW_KEY] = value
            session.save()
            assert_json_error(other.post(url("complete"), **JSON), 400, "no_flow")
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED

    def test_finishing_requires_csrf(self):
        browser = Client(enforce_csrf_checks=True)
        assert browser.get("/login/").status_code == 200
        token = browser.cookies["csrftoken"].value
        # Starting needs the token too.
        assert browser.post(url("start"), {"phone": PHONE}).status_code == 403
        assert not CallAuthFlow.objects.exists()
        assert browser.post(url("start"), {"phone": PHONE, "csrfmiddlewaretoken": token}).status_code == 302
        assert browser.post(url("sandbox_call"), {"csrfmiddlewaretoken": token}).status_code == 302
        flow = the_flow(browser)
        assert flow.status == FlowStatus.CONFIRMED
        # A forged cross-site POST: no token, a wrong token, JSON without the header.
        assert browser.post(url("complete")).status_code == 403
        assert browser.post(url("complete"), {"csrfmiddlewaretoken": "x" * 64}).status_code == 403
        assert browser.post(url("complete"), **JSON).status_code == 403
        assert browser.post(url("complete"), HTTP_X_CSRFTOKEN="y" * 32, **JSON).status_code == 403
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED
        assert logged_in_phone(browser) is None
        # The page's own form works.
        response = browser.post(url("complete"), {"csrfmiddlewaretoken": token})
        assert response.status_code == 302
        assert logged_in_phone(browser) == PHONE

    def test_finishing_by_script_with_the_csrf_header(self):
        browser = Client(enforce_csrf_checks=True)
        browser.get("/login/")
        token = browser.cookies["csrftoken"].value
        browser.post(url("start"), {"phone": PHONE, "csrfmiddlewaretoken": token})
        browser.post(url("sandbox_call"), {"csrfmiddlewaretoken": token})
        response = browser.post(url("complete"), HTTP_X_CSRFTOKEN=token, **JSON)
        assert response.status_code == 200
        assert logged_in_phone(browser) == PHONE


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


def _secret(path: str) -> str:
    return path.rstrip("/").split("/")[-1]


class TestInvariant2Webhook:
    def assert_nothing_happens(self, client, telefon_ip_api, before, response, status=None) -> None:
        if status is not None:
            assert response.status_code == status
        assert response.status_code < 500
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == 2  # the two starts; the webhook asked nobody
        # And the owner's next poll has nothing to verify: no paid check.
        assert client.get(url("status"), **JSON).json()["status"] == "pending"
        assert len(telefon_ip_api.calls) == 2
        assert logged_in_phone(client) is None

    def test_random_secret(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(_with_secret(path, "A" * 43))
        assert response.json() == {"error": "not_found", "message": "Unknown webhook."}
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    def test_random_flow_id_and_secret(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(_with_flow_id(_with_secret(path, "B" * 43), str(uuid.uuid4())))
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    def test_right_flow_wrong_secret(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        secret = _secret(path)
        tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        before = snapshot()
        for bad in (
            tampered,
            secret[:-1],
            secret + "A",
            secret.upper() if secret.upper() != secret else secret.lower(),
        ):
            response = call_webhook(_with_secret(path, bad))
            assert response.status_code == 404
        response = call_webhook(_with_secret(path, hashlib.sha256(secret.encode()).hexdigest()))
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    def test_someone_elses_flow_id_with_my_secret(self, client, telefon_ip_api, two_flows):
        _, path, theirs, _ = two_flows
        before = snapshot()
        response = call_webhook(
            _with_flow_id(path, str(theirs.pk)), phone=OTHER_PHONE_FOR_PROVIDER, id=str(OTHER_PROVIDER_ID)
        )
        self.assert_nothing_happens(client, telefon_ip_api, before, response, 404)

    def test_someone_elses_provider_id_through_my_webhook(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(path, id=str(OTHER_PROVIDER_ID))
        self.assert_nothing_happens(client, telefon_ip_api, before, response)

    @pytest.mark.parametrize("success", ["False", "false", "0", "", None, "no"])
    def test_success_false(self, client, telefon_ip_api, two_flows, success):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(path, success=success)
        self.assert_nothing_happens(client, telefon_ip_api, before, response)

    @pytest.mark.parametrize("phone", ["", None, "garbage", "+7900"])
    def test_missing_or_invalid_phone(self, client, telefon_ip_api, two_flows, phone):
        _, path, _, _ = two_flows
        before = snapshot()
        response = call_webhook(path, phone=phone)
        self.assert_nothing_happens(client, telefon_ip_api, before, response)

    @pytest.mark.parametrize("phone", [OTHER_PHONE_FOR_PROVIDER, "79007654321", "89001234568", "8900123456"])
    def test_mismatched_phone_is_never_trusted_only_verified(self, client, telefon_ip_api, two_flows, phone):
        # The webhook's phone decides nothing: the flow only becomes eligible for one
        # check of OUR stored id, and the provider's check answer (our phone) decides.
        mine, path, _, _ = two_flows
        response = call_webhook(path, phone=phone)
        assert response.status_code == 200
        mine.refresh_from_db()
        assert (mine.status, mine.caller) == (FlowStatus.PENDING, "")
        assert logged_in_phone(client) is None
        assert client.get(url("status"), **JSON).json()["status"] == "confirmed"
        assert [c.request.url for c in telefon_ip_api.calls[2:]] == [check_url()]

    def test_check_mode_flow_has_no_webhook(self, client, telefon_ip_api, settings):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        start(client)
        flow = the_flow(client)
        before = snapshot()
        path = reverse("callauth:webhook", kwargs={"flow_id": flow.pk, "secret": "anything"})
        assert call_webhook(path).status_code == 404
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == 1

    def test_replay_after_use(self, client, telefon_ip_api, two_flows):
        mine, path, _, _ = two_flows
        assert call_webhook(path).status_code == 200
        assert client.get(url("status"), **JSON).json()["status"] == "confirmed"
        assert client.post(url("complete"), **JSON).status_code == 200
        calls, before = len(telefon_ip_api.calls), snapshot()
        mine.refresh_from_db()
        assert mine.status == FlowStatus.USED
        for _ in range(2):
            assert call_webhook(path).status_code < 500
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == calls

    def test_replay_of_a_verified_webhook_asks_no_more(self, client, telefon_ip_api, two_flows):
        _, path, _, _ = two_flows
        call_webhook(path)
        assert client.get(url("status"), **JSON).json()["status"] == "confirmed"
        calls, before = len(telefon_ip_api.calls), snapshot()
        call_webhook(path)
        call_webhook(path, phone=OTHER_PHONE_FOR_PROVIDER)
        client.get(url("status"), **JSON)
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == calls

    def test_after_expiry(self, client, telefon_ip_api, two_flows):
        mine, path, _, _ = two_flows
        move_time(mine, 121)
        before = snapshot()
        response = call_webhook(path)
        assert response.status_code < 500
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == 2
        # The poll just expires it, without paying for a check.
        assert client.get(url("status"), **JSON).json()["status"] == "expired"
        assert len(telefon_ip_api.calls) == 2
        assert_json_error(client.post(url("complete"), **JSON), 410, "expired")

    def test_after_cancel(self, client, telefon_ip_api, two_flows):
        mine, path, _, _ = two_flows
        telefon_ip_api.post(START_POST, json=start_answer(777001))
        assert start(client, "+79005550000").status_code == 201  # a newer flow in the same browser
        mine.refresh_from_db()
        assert (mine.status, mine.failure_reason) == (FlowStatus.FAILED, FailureReason.CANCELLED)
        calls, before = len(telefon_ip_api.calls), snapshot()
        assert call_webhook(path).status_code < 500
        assert snapshot() == before
        assert len(telefon_ip_api.calls) == calls
        assert the_flow(client).status == FlowStatus.PENDING

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
        assert_json_error(caller.post(url("complete"), **JSON), 400, "no_flow")


# == Invariant 3: confirmed means exactly this phone, in time =========================================


class TestInvariant3ExactPhoneInTime:
    @pytest.mark.parametrize("caller", [OTHER_PHONE_FOR_PROVIDER, "79001234568", "+79007654321"])
    def test_check_answering_another_phone_fails_the_flow(self, client, telefon_ip_api, settings, caller):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(caller))
        start(client)
        assert client.get(url("status"), **JSON).json()["status"] == "failed"
        flow = the_flow(client)
        assert flow.failure_reason == FailureReason.PHONE_MISMATCH
        assert flow.caller != PHONE and flow.caller.startswith("+7")
        assert_json_error(client.post(url("complete"), **JSON), 403, "phone_mismatch", PHONE_MISMATCH)
        response = client.post(url("complete"))
        assert response.status_code == 403
        assert PHONE_MISMATCH in response.content.decode()
        assert logged_in_phone(client) is None

    def test_mismatch_is_final(self, client, telefon_ip_api, settings):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(OTHER_PHONE_FOR_PROVIDER))
        telefon_ip_api.get(check_url(), json=check_answer(PHONE_FOR_PROVIDER))
        start(client)
        assert client.get(url("status"), **JSON).json()["status"] == "failed"
        move_time(the_flow(client), 10)
        assert client.get(url("status"), **JSON).json()["status"] == "failed"
        assert len(check_calls(telefon_ip_api)) == 1
        assert_json_error(client.post(url("complete"), **JSON), 403, "phone_mismatch")
        assert logged_in_phone(client) is None

    def test_webhook_then_check_answering_another_phone(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer(OTHER_PHONE_FOR_PROVIDER))
        start(client)
        # The webhook claims the right phone; the check (the truth) says otherwise.
        assert call_webhook(webhook_path(telefon_ip_api)).status_code == 200
        assert client.get(url("status"), **JSON).json()["status"] == "failed"
        assert_json_error(client.post(url("complete"), **JSON), 403, "phone_mismatch", PHONE_MISMATCH)
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
        assert client.get(url("status"), **JSON).json()["status"] == "pending"
        assert len(check_calls(telefon_ip_api)) == 1
        assert_json_error(client.post(url("complete"), **JSON), 409, "not_confirmed")
        assert logged_in_phone(client) is None

    def test_late_sandbox_call_after_expiry(self, client):
        start(client)
        move_time(the_flow(client), 120)
        assert client.post(url("sandbox_call"), **JSON).json()["status"] == "expired"
        assert the_flow(client).status == FlowStatus.EXPIRED
        assert_json_error(client.post(url("complete"), **JSON), 410, "expired")
        assert logged_in_phone(client) is None

    def test_late_call_in_check_mode_is_not_even_asked_about(self, client, telefon_ip_api, settings):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer())
        start(client)
        move_time(the_flow(client), 121)
        assert client.get(url("status"), **JSON).json()["status"] == "expired"
        assert_json_error(client.post(url("complete"), **JSON), 410, "expired")
        assert check_calls(telefon_ip_api) == []
        assert logged_in_phone(client) is None

    def test_call_reported_in_time_and_verified_late_counts(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json=check_answer())
        start(client)
        move_time(the_flow(client), 115)
        assert call_webhook(webhook_path(telefon_ip_api)).status_code == 200
        move_time(the_flow(client), 10)  # the poll comes after the deadline
        assert client.get(url("status"), **JSON).json()["status"] == "confirmed"
        assert client.post(url("complete"), **JSON).status_code == 200
        assert logged_in_phone(client) == PHONE

    def test_confirmed_flow_must_be_finished_within_the_window(self, client):
        flow = sandbox_confirm(client)
        move_time(flow, 301)
        assert_json_error(client.post(url("complete"), **JSON), 410, "expired")
        assert logged_in_phone(client) is None


# == Invariant 4: one flow, one login ================================================================


class TestInvariant4OneLogin:
    def test_finishing_twice_logs_in_once(self, client):
        logins = []

        def receiver(sender, user, request, **kwargs):
            logins.append(user.pk)

        user_logged_in.connect(receiver)
        try:
            flow = sandbox_confirm(client)
            # Other requests that read the session before the first finish removed the flow.
            racers = []
            for _ in range(4):
                racer = Client()
                session = racer.session
                session[SESSION_FLOW_KEY] = str(flow.pk)
                session.save()
                racers.append(racer)
            first = client.post(url("complete"), **JSON)
            assert first.status_code == 200
            for racer in racers:
                assert_json_error(racer.post(url("complete"), **JSON), 409, "already_used")
                assert logged_in_phone(racer) is None
            assert_json_error(client.post(url("complete"), **JSON), 400, "no_flow")
        finally:
            user_logged_in.disconnect(receiver)
        assert len(logins) == 1
        flow.refresh_from_db()
        assert flow.status == FlowStatus.USED and flow.user_id == logins[0]

    def test_failed_finish_cannot_be_retried_into_a_login(self, client, settings):
        settings.CALLAUTH_SIGNUP = False
        flow = sandbox_confirm(client)
        assert_json_error(client.post(url("complete"), **JSON), 403, "no_account")
        settings.CALLAUTH_SIGNUP = True
        assert_json_error(client.post(url("complete"), **JSON), 403, "no_account")
        assert logged_in_phone(client) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.FAILED


# == Invariant 5: the backend authenticates a flow, never a phone =====================================


class TestInvariant5BackendNeverTakesAPhone:
    def test_phone_is_refused(self, client, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        flow = sandbox_confirm(client)
        request = RequestFactory().post("/")
        for kwargs in (
            {"phone": PHONE},
            {"phone": PHONE, "username": "alice"},
            {"callauth_phone": PHONE},
            {"callauth_flow": str(flow.pk)},
            {"callauth_flow": flow.pk},
            {"callauth_flow": {"phone": PHONE}},
            {"callauth_flow": None, "phone": PHONE},
        ):
            assert authenticate(request, **kwargs) is None, kwargs
            assert CallAuthBackend().authenticate(request, **kwargs) is None, kwargs
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED  # nothing was consumed
        # The one credential that works: the confirmed flow object itself.
        assert CallAuthBackend().authenticate(request, callauth_flow=flow) == user

    def test_pending_flow_is_refused(self, client, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        start(client)
        flow = the_flow(client)
        assert CallAuthBackend().authenticate(RequestFactory().post("/"), callauth_flow=flow) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.PENDING

    def test_complete_ignores_a_posted_phone(self, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        intruder = Client()
        assert_json_error(intruder.post(url("complete"), {"phone": PHONE, "username": "alice"}, **JSON), 400, "no_flow")
        assert logged_in_phone(intruder) is None


# == Invariant 6: authenticate() then login() ===========================================================


class TestInvariant6RealLogin:
    def test_login_rotates_session_and_csrf_fires_signal_and_forgets_the_flow(self, client):
        events = []

        def receiver(sender, user, request, **kwargs):
            events.append(user.pk)

        client.get("/login/")
        csrf_before = client.cookies["csrftoken"].value
        sandbox_confirm(client)
        session_before = client.cookies["sessionid"].value
        assert SESSION_FLOW_KEY in client.session
        user_logged_in.connect(receiver)
        try:
            response = client.post(url("complete"), **JSON)
        finally:
            user_logged_in.disconnect(receiver)
        assert response.status_code == 200
        assert len(events) == 1
        assert client.cookies["sessionid"].value != session_before
        assert client.cookies["csrftoken"].value != csrf_before
        assert SESSION_FLOW_KEY not in client.session
        assert client.session["_auth_user_backend"] == "django_callauth.backends.CallAuthBackend"
        assert logged_in_phone(client) == PHONE
        # The pre-login session key is dead: a fixated or stolen one is worth nothing.
        stale = Client()
        stale.cookies["sessionid"] = session_before
        assert logged_in_phone(stale) is None

    def test_no_flow_key_is_left_after_a_failed_start(self, client, telefon_ip_api):
        telefon_ip_api.post(START_POST, status=500, body="down")
        response = start(client)
        assert_json_error(response, 503, "provider_unavailable")
        assert SESSION_FLOW_KEY not in client.session


# == Invariant 7: no enumeration ===========================================================================


def _scrub(html: str, flow: CallAuthFlow) -> str:
    """The page minus what legitimately differs: the numbers, the QR, CSRF tokens, times."""
    html = re.sub(r"data:image/svg\+xml[^\"]*", "QR", html)
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken" value="CSRF"', html)
    for phone in (flow.call_to, flow.phone):
        html = html.replace(format_phone(phone), "NUMBER").replace(phone, "NUMBER")
    html = re.sub(r'data-expires-in="[0-9]+"', 'data-expires-in="T"', html)
    return re.sub(r"Time left: [0-9]+ s", "Time left: T s", html)


class TestInvariant7NoEnumeration:
    @pytest.fixture(params=[True, False], ids=["signup", "no-signup"])
    def known_phone(self, request, settings, django_user_model):
        settings.CALLAUTH_SIGNUP = request.param
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        return PHONE

    def _json_start(self, phone):
        browser = Client()
        response = start(browser, phone)
        return response, browser

    def test_json_start_is_identical(self, known_phone):
        known, _ = self._json_start(known_phone)
        unknown, _ = self._json_start(OTHER_PHONE)
        assert known.status_code == unknown.status_code == 201
        a, b = known.json(), unknown.json()
        assert set(a) == set(b)
        varying = {"call_to", "tel_uri", "qr", "expires_at", "expires_in"}
        assert {k: v for k, v in a.items() if k not in varying} == {k: v for k, v in b.items() if k not in varying}

    def test_html_start_and_challenge_are_identical(self, known_phone):
        pages = []
        for phone in (known_phone, OTHER_PHONE):
            browser = Client()
            response = browser.post(url("start"), {"phone": phone})
            assert (response.status_code, response["Location"]) == (302, url("challenge"))
            challenge = browser.get(url("challenge"))
            assert challenge.status_code == 200
            pages.append(_scrub(challenge.content.decode(), the_flow(browser)))
        assert pages[0] == pages[1]

    def test_same_answer_and_same_provider_request_with_telefon_ip(self, known_phone, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        answers = []
        for phone in (known_phone, OTHER_PHONE):
            answers.append(self._json_start(phone)[0])
        a, b = (r.json() for r in answers)
        assert answers[0].status_code == answers[1].status_code == 201
        assert {k: v for k, v in a.items() if k not in {"expires_at", "expires_in"}} == {
            k: v for k, v in b.items() if k not in {"expires_at", "expires_in"}
        }
        sent = [json.loads(call.request.body) for call in telefon_ip_api.calls]
        assert [set(s) for s in sent] == [{"phone", "webhook"}] * 2
        assert [c.request.method for c in telefon_ip_api.calls] == ["POST", "POST"]

    def test_pending_status_and_early_finish_are_identical(self, known_phone):
        seen = []
        for phone in (known_phone, OTHER_PHONE):
            browser = Client()
            start(browser, phone)
            status = browser.get(url("status"), **JSON)
            complete = browser.post(url("complete"), **JSON)
            seen.append((status.status_code, status.json()["status"], complete.status_code, complete.json()))
        assert seen[0] == seen[1]


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
        secret = _secret(path)
        bodies.append(client.get(url("status"), **JSON).content)
        bodies.append(call_webhook(path).content)
        bodies.append(client.get(url("status"), **JSON).content)
        bodies.append(client.get(url("challenge")).content)
        flow = the_flow(client)
        response = client.post(url("complete"), **JSON)
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

    def test_admin_pages_open_and_show_the_flow_without_secrets(self, client, telefon_ip_api, admin_client):
        telefon_ip_api.post(START_POST, json=start_answer())
        start(client)
        flow = the_flow(client)
        listing = admin_client.get("/admin/callauth/callauthflow/")
        page = admin_client.get(f"/admin/callauth/callauthflow/{flow.pk}/change/")
        assert listing.status_code == page.status_code == 200
        assert str(PROVIDER_ID) in page.content.decode()  # the page does show the flow
        assert flow.webhook_secret_hash not in page.content.decode()
        _assert_no_token(listing.content.decode() + page.content.decode())

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
        complete = client.post(url("complete"), **JSON)
        assert complete.status_code < 500
        _assert_no_token(response.content.decode() + complete.content.decode())
        _assert_no_token_stored()
        _assert_no_token_logged(caplog)


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

    @pytest.mark.parametrize(
        "auth_phone",
        [
            "",
            None,
            "<script>alert(1)</script>",
            "javascript:alert(1)",
            "tel:79644115786",
            "7964411578",
            "796441157860",
            "79644115786<b>",
            "7964411578\n6",
            ["79644115786"],
            {"number": "79644115786"},
            True,
            "78091234567",
            "+1 202 555 0123",
        ],
    )
    @pytest.mark.parametrize("accept", ["application/json", "text/html"])
    def test_invalid_number_to_call_is_a_clean_error(self, client, telefon_ip_api, auth_phone, accept):
        telefon_ip_api.post(START_POST, json=start_answer(auth_phone=auth_phone))
        response = client.post(url("start"), {"phone": PHONE}, HTTP_ACCEPT=accept)
        assert response.status_code == 502
        if accept == "application/json":
            assert_json_error(
                response, 502, "provider_error", "The phone call service failed. Please try again in a minute."
            )
        else:
            html = response.content.decode()
            assert "The phone call service failed. Please try again in a minute." in html
            assert "<script>alert" not in html and "javascript:" not in html and "<b>" not in html
            assert "tel:" not in html
        flow = CallAuthFlow.objects.get()
        assert (flow.status, flow.failure_reason, flow.call_to) == (FlowStatus.FAILED, FailureReason.PROVIDER_ERROR, "")
        assert not CallAuthFlow.objects.filter(status=FlowStatus.PENDING).exists()
        assert_json_error(client.get(url("challenge"), **JSON), 400, "no_flow")

    def test_provider_error_text_is_not_rendered(self, client, telefon_ip_api):
        telefon_ip_api.post(
            START_POST, json={"success": False, "error": "<script>alert('x')</script><b>bold</b>", "data": {}}
        )
        response = client.post(url("start"), {"phone": PHONE})
        assert response.status_code == 502
        html = response.content.decode()
        assert "<script>alert" not in html and "<b>bold" not in html and "alert(" not in html


# == Invariant 11: safe redirects only ======================================================================

# Django's own tests of url_has_allowed_host_and_scheme (tests/utils_tests/test_http.py).
UNSAFE_NEXT = [
    "http://exampel.com",
    "http:///example.com",
    "https://example.com",
    "ftp://example.com",
    r"\\example.com",
    r"\\\example.com",
    r"/\\/example.com",
    r"\\\\example.com",
    r"\\//example.com",
    r"/\/example.com",
    r"\/example.com",
    r"/\example.com",
    "http:/example.com",
    r"http:/\example.com",
    r"http:\/example.com",
    "HTTP:/example.com",
    "http://testserver@example.com",
    r"http://testserver\@example.com",
    'javascript:alert("XSS")',
    "\njavascript:alert(x)",
    "\x08//example.com",
    r"http://otherserver\@example.com",
    r"http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
    "//example.com",
    "///example.com",
]
SAFE_NEXT = [
    "/view/?param=http://example.com",
    "/view/?param=https://example.com",
    "/view?param=ftp://example.com",
    "view/?param=//example.com",
    "https://testserver/",
    "HTTPS://testserver/",
    "//testserver/",
    "http://testserver/confirm?email=me@example.com",
    "/url%20with%20spaces/",
    "path/http:2222222222",
]


class TestInvariant11SafeRedirects:
    @pytest.mark.parametrize("next_url", UNSAFE_NEXT)
    def test_unsafe_next_falls_back_to_login_redirect_url(self, client, next_url):
        client.post(url("start"), {"phone": PHONE, "next": next_url})
        assert the_flow(client).next_url == ""
        client.post(url("sandbox_call"))
        response = client.post(url("complete"))
        assert response.status_code == 302
        assert response["Location"] == "/"
        assert logged_in_phone(client) == PHONE

    @pytest.mark.parametrize("next_url", UNSAFE_NEXT[:8] + UNSAFE_NEXT[16:20])
    def test_unsafe_next_in_json(self, client, next_url):
        client.post(
            url("start"), json.dumps({"phone": PHONE, "next": next_url}), content_type="application/json", **JSON
        )
        client.post(url("sandbox_call"), **JSON)
        assert client.post(url("complete"), **JSON).json() == {"redirect": "/"}

    @pytest.mark.parametrize("next_url", [["/ok/"], {"url": "/ok/"}, 1, True])
    def test_next_that_is_not_a_string(self, client, next_url):
        client.post(
            url("start"), json.dumps({"phone": PHONE, "next": next_url}), content_type="application/json", **JSON
        )
        client.post(url("sandbox_call"), **JSON)
        assert client.post(url("complete"), **JSON).json() == {"redirect": "/"}

    @pytest.mark.parametrize("next_url", SAFE_NEXT)
    def test_safe_next_is_kept_as_given(self, client, next_url):
        client.post(url("start"), {"phone": PHONE, "next": next_url})
        client.post(url("sandbox_call"))
        response = client.post(url("complete"))
        assert response.status_code == 302
        assert response["Location"] == next_url
        assert logged_in_phone(client) == PHONE

    @pytest.mark.parametrize("next_url", SAFE_NEXT[:3])
    def test_safe_next_in_json(self, client, next_url):
        client.post(
            url("start"), json.dumps({"phone": PHONE, "next": next_url}), content_type="application/json", **JSON
        )
        client.post(url("sandbox_call"), **JSON)
        assert client.post(url("complete"), **JSON).json() == {"redirect": next_url}

    @pytest.mark.parametrize("next_url", ["/" + "a" * 2000, "/ok/\x00x", "/ok/\x7fx"])
    def test_next_that_cannot_be_stored_or_sent_falls_back(self, client, next_url):
        # PostgreSQL refuses NUL and values over the column's 2000 characters: a 500 there.
        assert start(client, next=next_url).status_code == 201
        assert the_flow(client).next_url == ""
        client.post(url("sandbox_call"), **JSON)
        assert client.post(url("complete"), **JSON).json() == {"redirect": "/"}

    def test_unsafe_next_is_not_put_back_into_the_form(self, client):
        response = client.post(url("start"), {"phone": "nope", "next": "https://example.com/"})
        assert response.status_code == 400
        assert "example.com" not in response.content.decode()

    def test_https_site_refuses_a_next_downgrading_to_http(self, client):
        client.post(url("start"), {"phone": PHONE, "next": "http://testserver/x/"}, secure=True)
        client.post(url("sandbox_call"), secure=True)
        response = client.post(url("complete"), secure=True)
        assert response["Location"] == "/"


# == Bad phone input ========================================================================================

BAD_PHONES = [
    "",
    "   ",
    "\n",
    "phone",
    "+7 900 ABC-45-67",
    "8900123456a",
    "+7900123456",  # too short
    "900123456",
    "+790012345678",  # too long
    "890012345678",
    "+7 900 123-45-67-89",
    "٨٩٠٠١٢٣٤٥٦٧",  # Arabic-Indic digits
    "８９００１２３４５６７",  # full-width digits
    "+7 ９00 123-45-67",
    "+7900\n1234567",
    "+7900\x001234567",
    "89001234567\x00",
    "\x0889001234567",
    "+7900\t1234567",
    "+7900\u200b1234567",
    "+380501234567",  # Ukraine
    "+12025550123",
    "+447911123456",
    "+77011234567",  # Kazakhstan
    "+78001234567",  # toll-free
    "+78091234567",  # premium rate
    "84951234567",  # Moscow landline
    "++79001234567",
    "+7+9001234567",
    "79001234567; DROP TABLE callauth_callauthflow",
    "<script>alert(1)</script>",
    "9" * 33,
    "8" * 10_240,
    "+7 900 123 45 67" + " " * 10_000,
]


class TestBadPhoneInput:
    @pytest.mark.parametrize("phone", BAD_PHONES)
    def test_refused_before_anything_is_written_or_paid(self, client, telefon_ip_api, phone):
        response = client.post(url("start"), {"phone": phone}, **JSON)
        assert_json_error(response, 400, "invalid_phone")
        assert not CallAuthFlow.objects.exists()
        assert len(telefon_ip_api.calls) == 0
        assert SESSION_FLOW_KEY not in client.session

    @pytest.mark.parametrize(
        "phone", [[PHONE], [PHONE, PHONE], {"phone": PHONE}, 79001234567, 7.9e10, None, True, [], ""]
    )
    def test_refused_in_json_bodies(self, client, telefon_ip_api, phone):
        response = client.post(url("start"), json.dumps({"phone": phone}), content_type="application/json", **JSON)
        assert_json_error(response, 400, "invalid_phone", "Enter your mobile phone number.")
        assert not CallAuthFlow.objects.exists()
        assert len(telefon_ip_api.calls) == 0

    def test_repeated_form_field(self, client, telefon_ip_api):
        response = client.post(url("start"), {"phone": [PHONE, "nope"]}, **JSON)
        assert_json_error(response, 400, "invalid_phone")
        assert len(telefon_ip_api.calls) == 0

    @pytest.mark.parametrize("phone", BAD_PHONES[:12])
    def test_refused_in_html_with_the_form_again(self, client, telefon_ip_api, phone):
        response = client.post(url("start"), {"phone": phone})
        assert response.status_code == 400
        html = response.content.decode()
        assert 'id="callauth-phone-error"' in html
        assert "<script>alert(1)" not in html
        assert not CallAuthFlow.objects.exists()
        assert len(telefon_ip_api.calls) == 0

    @pytest.mark.parametrize(
        "typed",
        [
            "+7 900 123-45-67",
            "+79001234567",
            "79001234567",
            "89001234567",
            "9001234567",
            "8 (900) 123-45-67",
            "+79001234567\n",
        ],
    )
    def test_every_accepted_form_is_the_one_canonical_number(self, client, telefon_ip_api, typed):
        telefon_ip_api.post(START_POST, json=start_answer())
        assert start(client, typed).status_code == 201
        assert the_flow(client).phone == PHONE
        assert json.loads(telefon_ip_api.calls[0].request.body)["phone"] == PHONE_FOR_PROVIDER


# == Never a 500 =================================================================================================

HOSTILE = [
    "",
    " ",
    "\x00",
    "\r\n",
    "%00",
    "%ff",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "${jndi:ldap://x/a}",
    "javascript:alert(1)",
    "\u202e\u0000",
    "😀" * 20,
    "null",
    "[]",
    "true",
    "-1",
    "1e309",
    "NaN",
    "%s%s%s%n",
    "\\",
    "//evil.example",
    "A" * 10_240,
    "+7" + "9" * 1000,
    "٩٠٠١٢٣٤٥٦٧",
    "\ufeff89001234567",
    str(uuid.uuid4()),
]
HOSTILE_JSON_BODIES = [
    "",
    "{",
    "[" * 100_000,
    '{"phone": ' * 50_000,
    '{"phone": "\\ud800"}',
    '{"phone": "+79001234567", "next": "/\\ud800"}',
    '{"phone": "+79001234567", "next": "/ok/\\u0000"}',
    '{"caller": "\\udfff"}',
    '"\\ud800"',
    "1" * 5000,
    "1e999999",
    "NaN",
    '{"phone": 1e999}',
    '{"phone": {"$gt": ""}}',
    '{"__proto__": {"phone": "+79001234567"}}',
    b"\xff\xfe\x00",
    b'{"phone": "\xff"}',
    '{"phone": "+79001234567", "phone": ["x"]}',
]
HOSTILE_ACCEPT = [
    "application/json;q=abc",
    "*/*;q=",
    ",,,",
    "application/json, text/html;q=2",
    "\x00",
    "text/html;level=" + "1" * 5000,
]


def robust_client() -> Client:
    return Client(raise_request_exception=False)


class TestNeverA500:
    @pytest.mark.parametrize("value", HOSTILE)
    def test_start_form_and_json(self, value, telefon_ip_api):
        telefon_ip_api.post(START_POST, json=start_answer())
        for accept in ("application/json", "text/html"):
            browser = robust_client()
            assert browser.post(url("start"), {"phone": value, "next": value}, HTTP_ACCEPT=accept).status_code < 500
            body = json.dumps({"phone": value, "next": value})
            assert (
                browser.post(url("start"), body, content_type="application/json", HTTP_ACCEPT=accept).status_code < 500
            )
            assert browser.post(url("start"), {"phone": PHONE, "next": value}, HTTP_ACCEPT=accept).status_code < 500

    @pytest.mark.parametrize("body", HOSTILE_JSON_BODIES)
    @pytest.mark.parametrize("accept", ["application/json", "text/html"])
    def test_hostile_json_bodies(self, body, accept):
        browser = robust_client()
        for view in ("start", "sandbox_call", "complete"):
            response = browser.post(url(view), body, content_type="application/json", HTTP_ACCEPT=accept)
            assert response.status_code < 500, view
        start(browser)
        for view in ("sandbox_call", "complete", "start"):
            response = browser.post(url(view), body, content_type="application/json", HTTP_ACCEPT=accept)
            assert response.status_code < 500, view

    @pytest.mark.parametrize(
        "content_type",
        [
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=nope",
            "text/plain",
            "application/json; charset=utf-16",
        ],
    )
    def test_hostile_content_types(self, content_type):
        browser = robust_client()
        start(browser)
        for view in ("start", "sandbox_call", "complete"):
            response = browser.generic("POST", url(view), b"--x\r\nphone=\xff\xfe", content_type=content_type, **JSON)
            assert response.status_code < 500, view

    @pytest.mark.parametrize("accept", HOSTILE_ACCEPT)
    def test_hostile_accept_headers(self, accept):
        browser = robust_client()
        assert browser.post(url("start"), {"phone": "x"}, HTTP_ACCEPT=accept).status_code < 500
        assert browser.post(url("start"), {"phone": PHONE}, HTTP_ACCEPT=accept).status_code < 500
        for name in ("challenge", "status"):
            assert browser.get(url(name), HTTP_ACCEPT=accept).status_code < 500
        assert browser.post(url("sandbox_call"), HTTP_ACCEPT=accept).status_code < 500
        assert browser.post(url("complete"), HTTP_ACCEPT=accept).status_code < 500

    @pytest.mark.parametrize("value", HOSTILE)
    def test_read_views_and_finish(self, value):
        browser = robust_client()
        query = "?" + urlencode({"flow": value, "next": value, "id": value})
        for accept in ("application/json", "text/html"):
            assert browser.get(url("challenge") + query, HTTP_ACCEPT=accept).status_code < 500
            assert browser.get(url("status") + query, HTTP_ACCEPT=accept).status_code < 500
            assert browser.post(url("complete") + query, {"flow": value}, HTTP_ACCEPT=accept).status_code < 500
        start(browser)
        for accept in ("application/json", "text/html"):
            assert browser.get(url("challenge") + query, HTTP_ACCEPT=accept).status_code < 500
            assert browser.get(url("status") + query, HTTP_ACCEPT=accept).status_code < 500
            assert browser.post(url("sandbox_call"), {"caller": value}, HTTP_ACCEPT=accept).status_code < 500
            body = json.dumps({"caller": value})
            assert (
                browser.post(url("sandbox_call"), body, content_type="application/json", HTTP_ACCEPT=accept).status_code
                < 500
            )
            assert browser.post(url("complete") + query, HTTP_ACCEPT=accept).status_code < 500

    @pytest.mark.parametrize(
        "value",
        [
            123,
            1.5,
            None,
            [],
            ["x"],
            {"a": 1},
            "",
            "x" * 5000,
            str(uuid.uuid4()),
            "00000000-0000-0000-0000-000000000000",
            "' OR 1=1 --",
        ],
    )
    def test_tampered_sessions(self, value):
        browser = robust_client()
        session = browser.session
        session[SESSION_FLOW_KEY] = value
        session.save()
        for accept in ("application/json", "text/html"):
            assert browser.get(url("challenge"), HTTP_ACCEPT=accept).status_code < 500
            assert browser.get(url("status"), HTTP_ACCEPT=accept).status_code < 500
            assert browser.post(url("complete"), HTTP_ACCEPT=accept).status_code < 500
            assert browser.post(url("sandbox_call"), HTTP_ACCEPT=accept).status_code < 500
        assert browser.post(url("start"), {"phone": PHONE}, **JSON).status_code == 201

    def test_flow_deleted_under_the_browser(self, client):
        client = robust_client()
        sandbox_confirm(client)
        CallAuthFlow.objects.all().delete()
        caches["default"].clear()  # polls may show the last state until its cached copy expires
        for accept in ("application/json", "text/html"):
            assert client.get(url("challenge"), HTTP_ACCEPT=accept).status_code == 400
            assert client.get(url("status"), HTTP_ACCEPT=accept).status_code == 400
            assert client.post(url("complete"), HTTP_ACCEPT=accept).status_code == 400
        assert logged_in_phone(client) is None

    @pytest.mark.parametrize("value", HOSTILE)
    def test_webhook(self, client, telefon_ip_api, value):
        telefon_ip_api.post(START_POST, json=start_answer())
        telefon_ip_api.get(check_url(), json={"success": False, "error": "", "data": {}})
        start(client)
        path = webhook_path(telefon_ip_api)
        caller = robust_client()
        query = "?" + urlencode({"success": "True", "phone": value, "id": value})
        for method in ("get", "post"):
            assert getattr(caller, method)(path + query).status_code < 500
            assert getattr(caller, method)(path + "?" + urlencode({"success": value, "phone": value})).status_code < 500
        assert caller.post(path, {"success": "True", "phone": value, "id": value}).status_code < 500
        assert (
            caller.post(
                path, value.encode("utf-8", "surrogatepass"), content_type="multipart/form-data; boundary=x"
            ).status_code
            < 500
        )
        assert caller.post(path, value, content_type="application/json").status_code < 500
        assert caller.get(path + "?" + "&".join(["success=True"] * 2000)).status_code < 500
        secret = urlencode({"s": value})[2:] or "x"
        flow = the_flow(client)
        assert caller.get(f"/callauth/webhook/{flow.pk}/{secret}/" + query).status_code < 500
        assert client.get(url("status"), **JSON).status_code < 500
        assert logged_in_phone(caller) is None


PROVIDER_ANSWERS = {
    "data_list": dict(json={"success": True, "error": "", "data": []}),
    "data_null": dict(json={"success": True, "error": "", "data": None}),
    "data_missing": dict(json={"success": True, "error": ""}),
    "data_string": dict(json={"success": True, "error": "", "data": "<b>x</b>"}),
    "json_list": dict(json=[1, 2, 3]),
    "json_string": dict(json="ok"),
    "id_bool": dict(json=start_answer(provider_id=True)),
    "id_float": dict(json=start_answer(provider_id=1.5)),
    "id_list": dict(json=start_answer(provider_id=[1])),
    "id_null": dict(json=start_answer(provider_id=None)),
    "id_huge": dict(json=start_answer(provider_id="9" * 200)),
    "id_path": dict(json=start_answer(provider_id="../../x")),
    "success_string": dict(json={**start_answer(), "success": "True"}),
    "success_yes": dict(json={**start_answer(), "success": "yes"}),
    "empty_body": dict(body=""),
    "huge_body": dict(body="x" * 200_000),
    "deep_json": dict(body="[" * 100_000),
    "html": dict(body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
    "http_204": dict(status=204, body=""),
    "http_301": dict(status=301, headers={"Location": "https://example.com/"}),
    "http_400": dict(status=400, json={"success": False, "error": "id record not found", "data": {}}),
    "http_404": dict(status=404, body="not found"),
    "http_418": dict(status=418, body=""),
    "http_504": dict(status=504, body=""),
    "connection_error": dict(body=requests.ConnectionError("refused")),
    "timeout": dict(body=requests.ConnectTimeout("timeout")),
    "chunked_error": dict(body=requests.exceptions.ChunkedEncodingError("broken")),
    "generic_request_error": dict(body=requests.RequestException("odd")),
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

    @pytest.mark.parametrize("answer", PROVIDER_ANSWERS.values(), ids=PROVIDER_ANSWERS.keys())
    def test_check(self, telefon_ip_api, settings, answer):
        settings.CALLAUTH_WEBHOOK_BASE_URL = ""
        telefon_ip_api.get(START_GET, json=start_answer())
        telefon_ip_api.add(responses.GET, check_url(), **answer)
        browser = robust_client()
        start(browser)
        for accept in ("application/json", "text/html"):
            assert browser.get(url("status"), HTTP_ACCEPT=accept).status_code < 500
            assert browser.get(url("challenge"), HTTP_ACCEPT=accept).status_code < 500
            response = browser.post(url("complete"), HTTP_ACCEPT=accept)
            assert response.status_code == 409  # still pending: not_confirmed
        assert the_flow(browser).status == FlowStatus.PENDING
        assert logged_in_phone(browser) is None
