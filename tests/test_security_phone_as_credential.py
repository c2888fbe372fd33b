"""Logging in by naming a phone instead of proving it (docs/security.rst, invariant 5).

The backend authenticates a confirmed flow object, never a phone number, a flow id or a
posted field.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory

from django_callauth.backends import CallAuthBackend
from django_callauth.models import CallAuthPhone, FlowStatus
from tests.helpers import (
    JSON,
    PHONE,
    assert_json_error,
    logged_in_phone,
    sandbox_confirm,
    start,
    the_flow,
    url,
)

pytestmark = pytest.mark.django_db


# == Invariant 5: the backend authenticates a flow, never a phone =====================================


class TestInvariant5BackendNeverTakesAPhone:
    def test_phone_is_refused(self, client, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        flow = sandbox_confirm(client)
        request = RequestFactory().post("/")
        for kwargs in (
            {"phone": PHONE},
            {"phone": PHONE, "username": "alice"},
            {"callauth_phone": PHONE},
            {"callauth_flow": str(flow.pk)},
            {"callauth_flow": flow.pk},
            {"callauth_flow": {"phone": PHONE}},
            {"callauth_flow": None, "phone": PHONE},
        ):
            assert authenticate(request, **kwargs) is None, kwargs
            assert CallAuthBackend().authenticate(request, **kwargs) is None, kwargs
        flow.refresh_from_db()
        assert flow.status == FlowStatus.CONFIRMED  # nothing was consumed
        # The one credential that works: the confirmed flow object itself.
        assert CallAuthBackend().authenticate(request, callauth_flow=flow) == user

    def test_pending_flow_is_refused(self, client, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        start(client)
        flow = the_flow(client)
        assert CallAuthBackend().authenticate(RequestFactory().post("/"), callauth_flow=flow) is None
        flow.refresh_from_db()
        assert flow.status == FlowStatus.PENDING

    def test_complete_ignores_a_posted_phone(self, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        intruder = Client()
        assert_json_error(intruder.post(url("complete"), {"phone": PHONE, "username": "alice"}, **JSON), 400, "no_flow")
        assert logged_in_phone(intruder) is None
