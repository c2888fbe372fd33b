"""Logging in by naming a phone instead of proving it (docs/security.rst, invariants 5, 12, 19).

The backend authenticates a confirmed flow object, never a phone number, a flow id or a
posted field; a phone silent for long (its number may be someone else's now) proves nothing;
and a session made by a call ends once its user may no longer log in by call.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from django_callauth.models import CallAuthPhone, FlowStatus
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


# == Invariant 5: the backend authenticates a flow, never a phone =====================================


class TestInvariant5BackendNeverTakesAPhone:
    def test_complete_ignores_a_posted_phone(self, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        intruder = Client()
        assert_json_error(intruder.post(url("complete"), {"phone": PHONE, "username": "alice"}, **JSON), 400, "no_flow")
        assert logged_in_phone(intruder) is None


# == Invariant 19: a phone's proof ages ==============================================================


class TestInvariant19ARecycledNumber:
    def test_a_number_silent_for_two_years_logs_nobody_in(self, client, django_user_model):
        # The operator gave the old owner's number to a stranger, who calls from it.
        owner = django_user_model.objects.create_user(username="alice", password="pw")
        two_years_ago = timezone.now() - timedelta(days=730)
        CallAuthPhone.objects.create(user=owner, phone=PHONE, created_at=two_years_ago, last_login_at=two_years_ago)
        flow = sandbox_confirm(client)
        assert_json_error(complete(client), 403, "phone_dormant")
        assert logged_in_phone(client) is None
        flow.refresh_from_db()
        assert (flow.status, flow.user) == (FlowStatus.FAILED, None)
        # Nor does a second try: the call proved the number, not the person.
        sandbox_confirm(client)
        assert_json_error(complete(client), 403, "phone_dormant")
        assert logged_in_phone(client) is None
        assert CallAuthPhone.objects.get().last_login_at == two_years_ago

    def test_its_page_offers_no_new_number(self, client, django_user_model):
        owner = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=owner, phone=PHONE, created_at=timezone.now() - timedelta(days=730))
        sandbox_confirm(client)
        response = client.post(url("complete"))
        assert response.status_code == 403
        assert 'id="callauth-restart"' not in response.content.decode()
        assert logged_in_phone(client) is None


# == A session made by a call lasts while its user may log in by call (invariant 12) ===================


class TestPromotedWhileLoggedInByCall:
    def test_a_user_made_staff_is_logged_out_before_the_admin_opens(self, client, django_user_model):
        user = django_user_model.objects.create_user(username="alice")
        CallAuthPhone.objects.create(user=user, phone=PHONE)
        sandbox_confirm(client)
        assert complete(client).status_code == 200
        assert logged_in_phone(client) == PHONE
        django_user_model.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        admin = client.get("/admin/")
        assert admin.status_code == 302
        assert admin["Location"].startswith("/admin/login/")
        assert logged_in_phone(client) is None
        assert client.get("/admin/").wsgi_request.user.is_anonymous
