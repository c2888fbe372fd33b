"""Project code that raises (an adapter, a signal receiver) never costs a login (invariant 14).

Before ``login()`` the person gets a clear error and can finish again; after it, the
session is saved and they land logged in, with the failure logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import user_logged_in
from django.dispatch import Signal
from django.http import HttpRequest
from django.test import Client

from django_callauth import signals
from django_callauth.adapter import CallAuthAdapter
from django_callauth.models import FlowStatus
from tests.helpers import (
    JSON,
    PHONE,
    assert_json_error,
    complete,
    logged_in_phone,
    sandbox_confirm,
    url,
)

pytestmark = pytest.mark.django_db


class FailingAdapter(CallAuthAdapter):
    """Raises in the method named by the ``TEST_ADAPTER_FAILS_IN`` setting."""

    def _maybe_fail(self, method: str) -> None:
        if getattr(django_settings, "TEST_ADAPTER_FAILS_IN", "") == method:
            raise RuntimeError(f"project bug in {method}")

    def get_user(self, request: HttpRequest | None, phone: str) -> Any:
        self._maybe_fail("get_user")
        return super().get_user(request, phone)

    def is_login_allowed(self, request: HttpRequest | None, user: Any) -> bool:
        self._maybe_fail("is_login_allowed")
        return super().is_login_allowed(request, user)

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        self._maybe_fail("get_login_redirect_url")
        return super().get_login_redirect_url(request)


@pytest.fixture
def adapter(settings: Any) -> Any:
    settings.CALLAUTH_ADAPTER = "tests.test_project_code_failures.FailingAdapter"
    return settings


@contextmanager
def failing_receiver(signal: Signal) -> Iterator[None]:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("project bug in a receiver")

    signal.connect(broken)
    try:
        yield
    finally:
        signal.disconnect(broken)


@pytest.mark.parametrize("method", ["get_user", "is_login_allowed"])
def test_an_adapter_failing_before_login_is_a_clear_error_and_the_flow_stays_usable(
    client: Client, adapter: Any, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow = sandbox_confirm(client)
    adapter.TEST_ADAPTER_FAILS_IN = method
    assert_json_error(complete(client), 503, "login_failed")
    flow.refresh_from_db()
    assert flow.status == FlowStatus.CONFIRMED
    assert logged_in_phone(client) is None
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)

    adapter.TEST_ADAPTER_FAILS_IN = ""  # the site is fixed, or it was a passing fault
    assert complete(client).status_code == 200
    assert logged_in_phone(client) == PHONE


def test_a_failing_login_redirect_still_lands_logged_in(client: Client, adapter: Any) -> None:
    sandbox_confirm(client)
    adapter.TEST_ADAPTER_FAILS_IN = "get_login_redirect_url"
    response = complete(client)
    assert response.json() == {"redirect": "/"}
    assert logged_in_phone(client) == PHONE


@pytest.mark.parametrize("signal", [user_logged_in, signals.logged_in], ids=["user_logged_in", "callauth_logged_in"])
@pytest.mark.parametrize("accept", [JSON, {}], ids=["json", "html"])
def test_a_receiver_failing_after_login_never_loses_the_login(
    client: Client, signal: Signal, accept: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox_confirm(client)
    with caplog.at_level(logging.ERROR):
        with failing_receiver(signal):
            response = client.post(url("complete"), **accept)
    assert response.status_code in (200, 302)
    assert logged_in_phone(client) == PHONE
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert [str(r.exc_info[1]) for r in failures] == ["project bug in a receiver"]


def test_a_receiver_that_throws_the_session_away_is_a_clear_error(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    def flush(request: HttpRequest, **kwargs: Any) -> None:
        request.session.flush()  # project code logging the user out again, or a session that cannot keep it

    flow = sandbox_confirm(client)
    user_logged_in.connect(flush)
    try:
        response = client.post(url("complete"), **JSON)
    finally:
        user_logged_in.disconnect(flush)
    assert_json_error(response, 503, "login_failed")
    assert logged_in_phone(client) is None
    assert f"Flow {flow.pk}: the login could not be stored in the session" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    ]
