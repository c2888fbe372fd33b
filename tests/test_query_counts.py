"""Database queries per request on every endpoint of a login, pinned.

tests/test_hot_path.py pins the status poll (a cache hit: the session only; a miss: the
session and the flow; a due check). Here: start, the webhook (which verifies itself), the
poll after it, and complete, in both of the provider's modes, so that a change adding a query
anywhere on a login's path shows up as a failing number. benchmarks/polls.py prints the
same counts beside the timings.

The counts are of statements sent, as ``django_assert_num_queries`` counts them: each
``atomic`` block adds two (BEGIN and COMMIT on a site, SAVEPOINT and RELEASE inside a
test's transaction: the same number either way).
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.test import Client

from django_callauth.models import CallAuthFlow
from tests.helpers import (
    PHONE,
    START_GET,
    START_POST,
    call_webhook,
    check_answer,
    check_url,
    complete,
    poll,
    start,
    start_answer,
    webhook_path,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def check_mode(telefon_ip_api: responses.RequestsMock, settings: Any) -> responses.RequestsMock:
    settings.CALLAUTH_WEBHOOK_BASE_URL = ""
    telefon_ip_api.get(START_GET, json=start_answer())
    return telefon_ip_api


@pytest.fixture
def webhook_mode(telefon_ip_api: responses.RequestsMock) -> responses.RequestsMock:
    telefon_ip_api.post(START_POST, json=start_answer())
    return telefon_ip_api


def started(client: Client) -> CallAuthFlow:
    assert start(client).status_code == 201
    return CallAuthFlow.objects.get()


class TestStart:
    # The flow: INSERT, then UPDATE with the provider's number, nothing read back (2). The session
    # under a new key: does the key exist, INSERT in an atomic block (4); saved at the end of
    # the response: UPDATE in an atomic block (3).
    @pytest.mark.parametrize("mode", ["webhook_mode", "check_mode"])
    def test_in_each_mode(self, request: pytest.FixtureRequest, mode: str, django_assert_num_queries: Any) -> None:
        request.getfixturevalue(mode)
        client = Client()
        with django_assert_num_queries(9):
            response = start(client)
        assert response.status_code == 201


class TestWebhook:
    """The provider's request: no session; our only provider request is the check that verifies it."""

    # The flow by id, the conditional UPDATEs noting the webhook, claiming its check and
    # confirming the flow (none read back).
    def test_a_known_webhook(self, webhook_mode: responses.RequestsMock, django_assert_num_queries: Any) -> None:
        started(Client())
        webhook_mode.get(check_url(), json=check_answer())
        with django_assert_num_queries(4):
            assert call_webhook(webhook_path(webhook_mode)).status_code == 200
        assert [call.request.url for call in webhook_mode.calls][1:] == [check_url()]

    def test_a_replayed_webhook(self, webhook_mode: responses.RequestsMock, django_assert_num_queries: Any) -> None:
        started(Client())
        webhook_mode.get(check_url(), json=check_answer(None))  # no call seen yet: the flow waits
        call_webhook(webhook_path(webhook_mode))
        with django_assert_num_queries(1):  # the flow: noted already, and its check is not due
            assert call_webhook(webhook_path(webhook_mode)).status_code == 200
        assert [call.request.url for call in webhook_mode.calls][1:] == [check_url()]

    def test_a_forged_webhook(self, webhook_mode: responses.RequestsMock, django_assert_num_queries: Any) -> None:
        started(Client())
        with django_assert_num_queries(1):  # the flow by id; its secret does not match: nothing written
            assert call_webhook(webhook_path(webhook_mode).rstrip("/") + "x/").status_code == 404


class TestPollAndComplete:
    def test_the_poll_after_a_verified_webhook(
        self,
        webhook_mode: responses.RequestsMock,
        shared_cache: Any,
        django_capture_on_commit_callbacks: Any,
        django_assert_num_queries: Any,
    ) -> None:
        client = Client()
        started(client)
        webhook_mode.get(check_url(), json=check_answer())
        with django_capture_on_commit_callbacks(execute=True):  # the webhook's request commits
            call_webhook(webhook_path(webhook_mode))
        # The session: the flow comes from the cache, where the webhook's confirmation put it.
        with django_assert_num_queries(1):
            assert poll(client) == "confirmed"
        assert [call.request.url for call in webhook_mode.calls][1:] == [check_url()]

    def test_complete_of_a_new_account(
        self, webhook_mode: responses.RequestsMock, django_assert_num_queries: Any
    ) -> None:
        client = Client()
        started(client)
        webhook_mode.get(check_url(), json=check_answer())
        call_webhook(webhook_path(webhook_mode))
        assert poll(client) == "confirmed"
        # As an existing account (below), without the phone's age (a phone just added is not dormant),
        # plus: is the username free, INSERT the user, INSERT its phone.
        with django_assert_num_queries(23):
            assert complete(client).status_code == 200

    def test_complete_of_an_existing_account(
        self, webhook_mode: responses.RequestsMock, django_assert_num_queries: Any
    ) -> None:
        from django.contrib.auth import get_user_model

        from django_callauth.models import CallAuthPhone

        CallAuthPhone.objects.create(user=get_user_model().objects.create_user(username="olga"), phone=PHONE)
        client = Client()
        started(client)
        webhook_mode.get(check_url(), json=check_answer())
        call_webhook(webhook_path(webhook_mode))
        assert poll(client) == "confirmed"
        # The session, the flow (from the database: finishing decides). In one atomic block (+2):
        # the UPDATE claiming the flow, the phone with its user, the phone's age
        # (is it dormant?), the flow's user, the phone's last login. Then login(): does the new
        # session key exist, INSERT it in an atomic block (+2), read and DELETE the old session,
        # the user's last_login; the session saved at the end of the response in an atomic block (+2).
        with django_assert_num_queries(19):
            assert complete(client).status_code == 200
