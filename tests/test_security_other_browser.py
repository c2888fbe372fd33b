"""A second browser trying to finish someone's login (docs/security.rst, invariant 1).

The flow is found through the starting browser's session only: never through an id, a URL
parameter, a cookie or a header another browser can send, and finishing needs CSRF.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow, FlowStatus
from tests.helpers import (
    JSON,
    PHONE,
    assert_json_error,
    complete,
    logged_in_phone,
    sandbox_confirm,
    start,
    the_flow,
    url,
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

    def test_own_flow_for_the_same_phone_does_not_borrow_the_confirmation(self, client):
        victim_flow = sandbox_confirm(client)
        intruder = Client()
        assert start(intruder, PHONE).status_code == 201
        assert_json_error(complete(intruder), 409, "not_confirmed")
        assert logged_in_phone(intruder) is None
        victim_flow.refresh_from_db()
        assert victim_flow.status == FlowStatus.CONFIRMED

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
