"""Django's error reports of the app's requests: no webhook secret, no phone number (invariants 9 and 16).

The reports are made as Django's ``AdminEmailHandler`` makes them, with the reporter and the
filter the example site (so the tests' settings) configures.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.http import HttpRequest
from django.test import RequestFactory
from django.urls import resolve
from django.views.debug import get_exception_reporter_class

from django_callauth.reporting import CallAuthExceptionReporter, CallAuthExceptionReporterFilter
from tests.helpers import PHONE_FOR_PROVIDER

FLOW_ID = "6bdaed4d-b159-4785-98ee-0cddbd3ac8cd"
SECRET = "Zx9-webhook_SECRET-Q"
WEBHOOK = f"/callauth/webhook/{FLOW_ID}/{SECRET}/"
NATIONAL = PHONE_FOR_PROVIDER[1:]
TYPED = "8 (900) 123-45-67"


def _failing(request: HttpRequest, phone: object) -> None:
    # A frame holding the request (its repr has the path) and the phone, as a view's does.
    raise RuntimeError("the database is down")


def reports(request: HttpRequest, phone: object = "", *, with_request: bool = True) -> dict[str, str]:
    """The text and the HTML report of a failure while serving ``request``, as the admins' mail has them.

    Without ``with_request``, the report is made as for a record of our own logger: it
    carries no request, but the failing frame still holds it.
    """
    request.resolver_match = resolve(request.path_info)
    try:
        _failing(request, phone)
    except RuntimeError:
        exc_info = sys.exc_info()
    about = request if with_request else None
    reporter = get_exception_reporter_class(about)(about, *exc_info, is_email=True)
    return {"text": reporter.get_traceback_text(), "html": reporter.get_traceback_html()}


def test_the_example_site_configures_both() -> None:
    request = RequestFactory().get("/")
    reporter = get_exception_reporter_class(request)(request, None, None, None)
    assert isinstance(reporter, CallAuthExceptionReporter)
    assert isinstance(reporter.filter, CallAuthExceptionReporterFilter)


@pytest.mark.parametrize("kind", ["text", "html"])
def test_a_webhooks_report_tells_neither_its_secret_nor_the_callers_number(kind: str) -> None:
    request = RequestFactory().get(WEBHOOK, {"success": "True", "phone": PHONE_FOR_PROVIDER, "id": "5"})
    report = reports(request, PHONE_FOR_PROVIDER)[kind]
    assert SECRET not in report
    assert NATIONAL not in report
    assert FLOW_ID in report  # which flow it was stays told
    assert "the database is down" in report


@pytest.mark.parametrize("kind", ["text", "html"])
def test_a_phone_forms_report_hides_the_phone(kind: str) -> None:
    request = RequestFactory().post("/callauth/start/", {"phone": TYPED, "next": "/after/"})
    report = reports(request, TYPED)[kind]
    assert "123-45-67" not in report
    assert "/after/" in report  # other fields are still shown


@pytest.mark.parametrize("kind", ["text", "html"])
def test_a_report_without_a_request_still_hides_what_its_frames_hold(kind: str) -> None:
    # Our own logger's records carry no request: the frames still hold one.
    request = RequestFactory().get(WEBHOOK, {"phone": PHONE_FOR_PROVIDER})
    report = reports(request, PHONE_FOR_PROVIDER, with_request=False)[kind]
    assert SECRET not in report
    assert NATIONAL not in report


def test_a_body_that_cannot_be_read_is_reported_all_the_same() -> None:
    request = RequestFactory().post("/callauth/start/", b"--x\r\nbroken", content_type="multipart/form-data")
    for report in reports(request).values():
        assert "the database is down" in report


def test_with_debug_on_nothing_is_hidden(settings: Any) -> None:
    # Like Django's own filter: a developer's error page shows the request as it came.
    settings.DEBUG = True
    request = RequestFactory().post(f"{WEBHOOK}?phone={PHONE_FOR_PROVIDER}", {"phone": TYPED})
    for report in reports(request, TYPED).values():
        assert SECRET in report
        assert NATIONAL in report
