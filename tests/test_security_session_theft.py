"""A copied session cookie changing an account's phones (docs/security.rst, invariant 18).

The attacker holds a copy of the owner's session cookie (malware, a shared computer, a
leaked log) and wants the account for good: add his own phone, remove the owner's. Only a
login within ``CALLAUTH_REAUTHENTICATION_TIMEOUT`` may change phones; an older session is
refused before anything is written or any provider asked, and stays logged in for its
owner, who can log in again (by a call to a phone of the account, or by password) and
then make the change.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.conf import settings
from django.test import Client
from django.utils import timezone

from django_callauth.guards.reauthentication import AUTHENTICATED_AT_KEY
from django_callauth.models import CallAuthFlow, CallAuthPhone
from tests.helpers import (
    JSON,
    OTHER_PHONE,
    OTHER_PHONE_FOR_PROVIDER,
    OTHER_PROVIDER_ID,
    PHONE,
    START_POST,
    Clock,
    assert_json_error,
    call_webhook,
    check_answer,
    check_url,
    logged_in_user,
    page_forms,
    phones_of,
    start_answer,
    submit,
    tabs_of,
    url,
    webhook_path,
)

pytestmark = pytest.mark.django_db

PASSWORD = "a long password"  # alice's, in conftest
WINDOW = 300  # CALLAUTH_REAUTHENTICATION_TIMEOUT's default, pinned in tests/settings.py


@pytest.fixture
def owner(clock: Clock, alice: Any) -> Any:
    """alice, whose own phone is PHONE; she logs in at T0."""
    # created_at in the clock's time (the field's default is the real clock): a phone just added, not dormant.
    CallAuthPhone.objects.create(user=alice, phone=PHONE, created_at=timezone.now())
    return alice


@pytest.fixture
def browser(owner: Any) -> Client:
    """alice's browser, logged in by password at T0."""
    client = Client()
    assert client.login(username=owner.username, password=PASSWORD)
    return client


def copy_of(browser: Client) -> Client:
    """The attacker's browser: a copy of the owner's session cookie."""
    return tabs_of(browser, 1)[0]


def add(client: Client, phone: str = OTHER_PHONE) -> Any:
    return client.post(url("phone_add"), {"phone": phone}, **JSON)


def remove(client: Client, owner: Any) -> Any:
    link = CallAuthPhone.objects.get(user=owner, phone=PHONE)
    return client.post(url("phone_remove", link_id=link.pk), **JSON)


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# == Invariant 18: adding or removing a way in needs a recent proof ===========================


class TestInvariant18RecentProof:
    def test_a_copied_cookie_older_than_the_window_adds_nothing_and_asks_no_provider(
        self, clock: Clock, owner: Any, browser: Client, telefon_ip_api: responses.RequestsMock
    ) -> None:
        telefon_ip_api.post(START_POST, json=start_answer())
        attacker = copy_of(browser)
        key = session_key(browser)
        clock.advance(WINDOW)
        assert_json_error(add(attacker), 401, "reauthentication_required")
        page = attacker.post(url("phone_add"), {"phone": OTHER_PHONE})
        assert page.status_code == 401
        assert not CallAuthFlow.objects.exists()
        assert list(telefon_ip_api.calls) == []
        assert phones_of(owner) == [PHONE]
        # The owner's browser was not logged out: the refused attempt rotated no session key.
        assert session_key(attacker) == key
        assert logged_in_user(browser) == str(owner.pk)
        assert browser.get(url("phones"), **JSON).status_code == 200

    def test_a_copied_cookie_older_than_the_window_removes_nothing(
        self, clock: Clock, owner: Any, browser: Client, sent: Any
    ) -> None:
        attacker = copy_of(browser)
        clock.advance(WINDOW + 3600)
        assert_json_error(remove(attacker, owner), 401, "reauthentication_required")
        link = CallAuthPhone.objects.get(user=owner)
        assert attacker.post(url("phone_remove", link_id=link.pk)).status_code == 401
        assert phones_of(owner) == [PHONE]
        assert sent.of("phone_removed") == []
        assert logged_in_user(browser) == str(owner.pk)

    def test_after_logging_in_again_by_call_the_same_session_can_add_and_remove(
        self, clock: Clock, owner: Any, browser: Client, telefon_ip_api: responses.RequestsMock, sent: Any
    ) -> None:
        telefon_ip_api.post(START_POST, json=start_answer())  # the login again
        telefon_ip_api.post(START_POST, json=start_answer(OTHER_PROVIDER_ID))  # the link
        telefon_ip_api.get(check_url(), json=check_answer())
        telefon_ip_api.get(check_url(OTHER_PROVIDER_ID), json=check_answer(OTHER_PHONE_FOR_PROVIDER, OTHER_PROVIDER_ID))
        clock.advance(WINDOW)
        assert_json_error(add(browser), 401, "reauthentication_required")
        # The phones page offers "Log in again by a call from +7 900 …"; alice presses it and calls.
        offers = [
            form for form in page_forms(browser.get(url("phones")).content.decode()) if form.action == url("start")
        ]
        assert [form.fields for form in offers] == [{"phone": PHONE, "next": url("phones")}]
        assert submit(browser, offers[0])["Location"] == url("challenge")
        assert call_webhook(webhook_path(telefon_ip_api, 0)).status_code == 200
        assert browser.post(url("complete"))["Location"] == url("phones")
        assert logged_in_user(browser) == str(owner.pk)  # the same account, logged in again
        # Now she adds OTHER_PHONE by a call from it, and removes her first phone.
        assert add(browser).status_code == 201
        call_webhook(webhook_path(telefon_ip_api, 1), phone=OTHER_PHONE_FOR_PROVIDER, id=str(OTHER_PROVIDER_ID))
        assert browser.post(url("link_complete"), **JSON).status_code == 200
        assert phones_of(owner) == [PHONE, OTHER_PHONE]
        assert remove(browser, owner).json() == {"removed": PHONE}
        assert phones_of(owner) == [OTHER_PHONE]
        assert len(sent.of("phone_linked")) == len(sent.of("phone_removed")) == 1

    # Every planted value: test_reauthentication.py::test_a_planted_value_is_no_login_time.
    @pytest.mark.parametrize(
        "planted",
        [
            pytest.param(lambda now: now + 60, id="a-minute-to-come"),
        ],
    )
    def test_a_planted_time_is_not_a_recent_login(
        self, clock: Clock, owner: Any, browser: Client, planted: Any
    ) -> None:
        clock.advance(WINDOW)  # the real login is too old: only the planted value could let it in
        session = browser.session
        session[AUTHENTICATED_AT_KEY] = planted(clock.now.timestamp())
        session.save()
        assert_json_error(add(browser), 401, "reauthentication_required")
        assert_json_error(remove(browser, owner), 401, "reauthentication_required")
        assert not CallAuthFlow.objects.exists()
        assert phones_of(owner) == [PHONE]

    def test_a_session_from_before_the_login_time_was_noted_must_log_in_again(
        self, owner: Any, browser: Client
    ) -> None:
        session = browser.session
        del session[AUTHENTICATED_AT_KEY]
        session.save()
        assert_json_error(add(browser), 401, "reauthentication_required")
        assert logged_in_user(browser) == str(owner.pk)
