"""Open redirects after login (docs/security.rst, invariant 11).

``next`` is kept only when ``url_has_allowed_host_and_scheme`` accepts it; anything else
falls back to ``LOGIN_REDIRECT_URL``.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import (
    JSON,
    PHONE,
    complete,
    logged_in_phone,
    start,
    the_flow,
    url,
)

pytestmark = pytest.mark.django_db


# == Invariant 11: safe redirects only ======================================================================

# From Django's own tests of url_has_allowed_host_and_scheme (tests/utils_tests/test_http.py), which
# safe_next calls: one of each trick (another host or scheme, backslashes, a user part, a script,
# control characters, a broken IPv6 host, a scheme-relative URL); Django's tests hold the rest.
UNSAFE_NEXT = [
    "http://exampel.com",
    "https://example.com",
    "ftp://example.com",
    r"\\example.com",
    r"/\/example.com",
    r"http:/\example.com",
    "HTTP:/example.com",
    "http://testserver@example.com",
    r"http://testserver\@example.com",
    'javascript:alert("XSS")',
    "\njavascript:alert(x)",
    "\x08//example.com",
    r"http:999999999",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "//example.com",
    "///example.com",
]
SAFE_NEXT = [
    "/view/?param=http://example.com",
    "view/?param=//example.com",
    "https://testserver/",
    "//testserver/",
    "http://testserver/confirm?email=me@example.com",
    "/url%20with%20spaces/",
]


class TestInvariant11SafeRedirects:
    @pytest.mark.parametrize("next_url", UNSAFE_NEXT)
    def test_unsafe_next_falls_back_to_login_redirect_url(self, client, settings, next_url):
        settings.LOGIN_REDIRECT_URL = "/account/"  # not "/": the fallback is the setting, not a constant
        client.post(url("start"), {"phone": PHONE, "next": next_url})
        assert the_flow(client).next_url == ""
        client.post(url("sandbox_call"))
        response = client.post(url("complete"))
        assert response.status_code == 302
        assert response["Location"] == "/account/"
        assert logged_in_phone(client) == PHONE

    # The last four: a next that is not a string.
    @pytest.mark.parametrize("next_url", UNSAFE_NEXT[:3] + UNSAFE_NEXT[7:10] + [["/ok/"], {"url": "/ok/"}, 1, True])
    def test_unsafe_next_in_json(self, client, next_url):
        client.post(
            url("start"), json.dumps({"phone": PHONE, "next": next_url}), content_type="application/json", **JSON
        )
        client.post(url("sandbox_call"), **JSON)
        assert complete(client).json() == {"redirect": "/"}

    @pytest.mark.parametrize("next_url", SAFE_NEXT)
    def test_safe_next_is_kept_as_given(self, client, next_url):
        client.post(url("start"), {"phone": PHONE, "next": next_url})
        client.post(url("sandbox_call"))
        response = client.post(url("complete"))
        assert response.status_code == 302
        assert response["Location"] == next_url
        assert logged_in_phone(client) == PHONE

    @pytest.mark.parametrize("next_url", ["/" + "a" * 2000, "/ok/\x00x", "/ok/\x7fx"])
    def test_next_that_cannot_be_stored_or_sent_falls_back(self, client, next_url):
        # PostgreSQL refuses NUL and values over the column's 2000 characters: a 500 there.
        assert start(client, next=next_url).status_code == 201
        assert the_flow(client).next_url == ""
        client.post(url("sandbox_call"), **JSON)
        assert complete(client).json() == {"redirect": "/"}

    def test_unsafe_next_is_not_put_back_into_the_form(self, client):
        response = client.post(url("start"), {"phone": "nope", "next": "https://example.com/"})
        assert response.status_code == 400
        assert "example.com" not in response.content.decode()

    def test_https_site_refuses_a_next_downgrading_to_http(self, client):
        client.post(url("start"), {"phone": PHONE, "next": "http://testserver/x/"}, secure=True)
        client.post(url("sandbox_call"), secure=True)
        response = client.post(url("complete"), secure=True)
        assert response["Location"] == "/"
