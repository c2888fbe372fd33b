"""A second browser trying to finish someone's login (docs/security.rst, invariant 1).

The flow is found through the starting browser's session only: never through an id, a URL
parameter, a cookie or a header another browser can send, and finishing needs CSRF.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, FlowStatus
from tests.helpers import (
    JSON,
    PHONE,
    PHONE_FOR_PROVIDER,
    PROVIDER_ID,
    START_POST,
    assert_json_error,
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


# == Invariant 1: only the browser that started a flow can finish it ==========================


class TestInvariant1OnlyTheStartingBrowser:
    def test_second_browser_sees_no_flow(self, client):
        flow = sandbox_confirm(client)
        intruder = Client()
        assert_json_error(intruder.get(url("challenge"), **JSON), 400, "no_flow")
        assert_json_error(intruder.get(url("status"), **JSON), 400, "no_flow")
        assert_json_error(complete(intruder), 400, "no_flow")
        assert intruder.get(url("challenge")).status_code == 400
        assert flow.call_to not in intruder.get(url("challenge")).content.decode()
        assert logged_in_phone(intruder) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED
        # The owner is unaffected and still finishes.
        assert complete(client).status_code == 200
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
        assert_json_error(complete(intruder), 409, "not_confirmed")
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
        assert_json_error(complete(intruder), 400, "no_flow")
        assert logged_in_phone(intruder) is None
        assert len(check_calls(telefon_ip_api)) == 1  # the webhook's own check confirmed the owner's flow
        # Only the owner's browser holds it, and only the owner finishes.
        assert poll(client) == "confirmed"
        assert complete(client).status_code == 200
        assert logged_in_phone(client) == PHONE
        assert logged_in_phone(intruder) is None

    def test_tampered_session_values_find_no_flow(self, client):
        flow = sandbox_confirm(client)
        for value in [12345, [str(flow.pk)], {"id": str(flow.pk)}, str(flow.pk).upper() + "x", "", str(uuid.uuid4())]:
            other = Client()
            session = other.session
            session[SESSION_FLOW_KEY] = value
            session.save()
            assert_json_error(complete(other), 400, "no_flow")
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
        assert complete(browser).status_code == 403
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
