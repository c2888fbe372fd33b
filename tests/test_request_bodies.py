"""Bodies Django refuses to read get our error on every POST endpoint: never a 500, and
never Django's bare HTML 400 page for a JSON client.

Django's own limits (``DATA_UPLOAD_MAX_MEMORY_SIZE``, ``DATA_UPLOAD_MAX_NUMBER_FIELDS``) are
set small here, so a "huge" body is a kilobyte.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

import django
import pytest
from django.test import Client
from django.test.client import encode_multipart

from tests.helpers import JSON, PHONE, assert_json_error, url

pytestmark = pytest.mark.django_db

MAX_BYTES = 1000
MAX_FIELDS = 10
POST_ENDPOINTS = ["start", "complete", "sandbox_call"]

TOO_LARGE = (413, "request_too_large", "The request is too large.")
TOO_MANY_FIELDS = (400, "too_many_fields", "The request has too many fields.")
UNREADABLE = (400, "invalid_request", "The request body could not be read.")

_BIG = {"phone": PHONE, "pad": "x" * MAX_BYTES}
_MANY = {"phone": PHONE, **{f"f{i}": "1" for i in range(MAX_FIELDS)}}
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=b0undary"

#: name: (body, content type, expected answer)
BODIES: dict[str, tuple[bytes, str, tuple[int, str, str]]] = {
    "json_too_large": (json.dumps(_BIG).encode(), "application/json", TOO_LARGE),
    "form_too_large": (urlencode(_BIG).encode(), FORM, TOO_LARGE),
    "multipart_too_large": (encode_multipart("b0undary", _BIG), MULTIPART, TOO_LARGE),
    "form_too_many_fields": (urlencode(_MANY).encode(), FORM, TOO_MANY_FIELDS),
    "multipart_too_many_fields": (encode_multipart("b0undary", _MANY), MULTIPART, TOO_MANY_FIELDS),
    "multipart_without_boundary": (b"--x\r\nbroken", "multipart/form-data", UNREADABLE),
    "form_not_utf8": (b"phone=%2B79001234567", FORM + "; charset=latin-1", UNREADABLE),
}


@pytest.fixture(autouse=True)
def small_limits(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BYTES
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = MAX_FIELDS


def browser(csrf: bool) -> tuple[Client, dict[str, str]]:
    """A test client, or one that passes a real CSRF check (which reads ``request.POST`` first)."""
    if not csrf:
        return Client(), {}
    client = Client(enforce_csrf_checks=True)
    assert client.get("/login/").status_code == 200
    return client, {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def assert_html_error(response: Any, status: int, message: str) -> None:
    """Our error page, not Django's bare one."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("text/html")
    assert f'<p class="callauth-error" role="alert">{message}</p>' in response.content.decode()


def assert_answer(response: Any, as_json: bool, expected: tuple[int, str, str]) -> None:
    status, code, message = expected
    if as_json:
        assert_json_error(response, status, code, message)
    else:
        assert_html_error(response, status, message)


@pytest.mark.parametrize("csrf", [False, True], ids=["no_csrf_check", "csrf_check"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json_client", "browser"])
@pytest.mark.parametrize("body_name", sorted(BODIES))
@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_a_refused_body_gets_our_error(endpoint: str, body_name: str, as_json: bool, csrf: bool) -> None:
    body, content_type, expected = BODIES[body_name]
    client, csrf_header = browser(csrf)
    response = client.post(url(endpoint), body, content_type=content_type, **csrf_header, **(JSON if as_json else {}))
    assert_answer(response, as_json, expected)


class HungUp(io.RawIOBase):
    """The body stream of a client that hung up mid-body."""

    def read(self, size: int = -1) -> bytes:
        raise OSError("connection reset by peer")


@pytest.mark.parametrize("as_json", [True, False], ids=["json_client", "browser"])
@pytest.mark.parametrize(
    "environ",
    [
        lambda: {"CONTENT_LENGTH": "twenty"},  # real servers refuse it; a bare WSGI setup may pass it on
        lambda: {"wsgi.input": HungUp()},
    ],
    ids=["content_length_not_a_number", "connection_broken_mid_body"],
)
def test_an_unreadable_body_is_a_bad_request_not_a_500(as_json: bool, environ: Any) -> None:
    body = urlencode({"phone": PHONE}).encode()
    response = Client().post(url("start"), body, content_type=FORM, **environ(), **(JSON if as_json else {}))
    if environ().get("CONTENT_LENGTH") and django.VERSION >= (6, 1):
        # Django 6.1 reads a body whose length is not a number as empty: no phone was sent.
        assert response.status_code == 400
        assert "Enter your mobile phone number." in response.content.decode()
    else:
        assert_answer(response, as_json, UNREADABLE)


def test_a_body_within_the_limits_still_starts() -> None:
    body = urlencode({"phone": PHONE, "pad": "x" * (MAX_BYTES - 100)}).encode()
    response = Client().post(url("start"), body, content_type=FORM, **JSON)
    assert response.status_code == 201, response.content
