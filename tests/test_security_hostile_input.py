"""Hostile input from browsers: bad phones, bodies, headers and sessions.

A phone that is not one canonical Russian mobile number is refused before anything is
written or paid for; nothing a browser or a caller of the webhook sends gives a 500.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

import pytest
from django.core.cache import caches

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import CallAuthFlow
from tests.helpers import (
    JSON,
    PHONE,
    START_POST,
    assert_json_error,
    check_url,
    logged_in_phone,
    robust_client,
    sandbox_confirm,
    start,
    start_answer,
    the_flow,
    url,
    webhook_path,
)

pytestmark = pytest.mark.django_db


# == Bad phone input ========================================================================================

# One phone of each kind the parser refuses (every one: test_phones.py).
BAD_PHONES = [
    "",
    "phone",
    "+7900123456",  # too short
    "+790012345678",  # too long
    "٨٩٠٠١٢٣٤٥٦٧",  # Arabic-Indic digits
    "+7900\x001234567",
    "+380501234567",  # Ukraine
    "+78091234567",  # premium rate
    "79001234567; DROP TABLE callauth_callauthflow",
    "<script>alert(1)</script>",
    "8" * 10_240,
]


class TestBadPhoneInput:
    @pytest.mark.parametrize("phone", [*BAD_PHONES, [PHONE, "nope"]])  # the last: a repeated form field
    def test_refused_before_anything_is_written_or_paid(self, client, telefon_ip_api, phone):
        response = client.post(url("start"), {"phone": phone}, **JSON)
        assert_json_error(response, 400, "invalid_phone")
        assert not CallAuthFlow.objects.exists()
        assert len(telefon_ip_api.calls) == 0
        assert SESSION_FLOW_KEY not in client.session

    @pytest.mark.parametrize("phone", [[PHONE], {"phone": PHONE}, 79001234567, None])
    def test_refused_in_json_bodies(self, client, telefon_ip_api, phone):
        response = client.post(url("start"), json.dumps({"phone": phone}), content_type="application/json", **JSON)
        assert_json_error(response, 400, "invalid_phone")
        assert not CallAuthFlow.objects.exists()
        assert len(telefon_ip_api.calls) == 0


# == Never a 500 =================================================================================================

# One of each kind of junk: control characters and bad escapes, paths, markup, SQL, template and
# JNDI syntax, a script URL, bidi and emoji, JSON words, numbers out of range, format strings,
# sizes, non-ASCII digits and a BOM. The parsers under the views see far more in test_properties.py.
HOSTILE = [
    "",
    "\x00",
    "\r\n",
    "%ff",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "{{ settings.SECRET_KEY }}",
    "${jndi:ldap://x/a}",
    "javascript:alert(1)",
    "\u202e\u0000",
    "😀" * 20,
    "null",
    "1e309",
    "%s%s%s%n",
    "//evil.example",
    "A" * 10_240,
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
    '{"phone": "+79001234567", "next": "/ok/\\u0000"}',
    '{"caller": "\\udfff"}',
    "1e999999",
    "NaN",
    '{"phone": {"$gt": ""}}',
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

    # One of each kind (every one, one layer down: test_flows.py::test_flow_from_session_refuses_junk).
    @pytest.mark.parametrize("value", [123, None, ["x"], {"a": 1}, "x" * 5000, str(uuid.uuid4())])
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
