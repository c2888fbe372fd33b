"""Finishing one confirmed flow twice, or retrying a refused finish (docs/security.rst, invariant 4).

Here through the views, one request after another; the real races (threads on
PostgreSQL) are in test_concurrency.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import user_logged_in
from django.test import Client

from django_callauth.flows import SESSION_FLOW_KEY
from django_callauth.models import FlowStatus
from tests.helpers import (
    assert_json_error,
    complete,
    logged_in_phone,
    sandbox_confirm,
)

pytestmark = pytest.mark.django_db


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
            first = complete(client)
            assert first.status_code == 200
            for racer in racers:
                assert_json_error(complete(racer), 409, "already_used")
                assert logged_in_phone(racer) is None
            assert_json_error(complete(client), 400, "no_flow")
        finally:
            user_logged_in.disconnect(receiver)
        assert len(logins) == 1
        flow.refresh_from_db()
        assert flow.status == FlowStatus.USED and flow.user_id == logins[0]

    def test_failed_finish_cannot_be_retried_into_a_login(self, client, settings):
        settings.CALLAUTH_SIGNUP = False
        flow = sandbox_confirm(client)
        assert_json_error(complete(client), 403, "no_account")
        settings.CALLAUTH_SIGNUP = True
        assert_json_error(complete(client), 403, "no_account")
        assert logged_in_phone(client) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.FAILED
