"""``CallAuthBackend`` authenticates a confirmed flow, never a phone (docs/security.rst, invariants 5, 7, 12)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import RequestFactory
from django.utils import timezone

from django_callauth.adapter import CallAuthAdapter
from django_callauth.backends import CallAuthBackend
from django_callauth.models import CallAuthFlow, CallAuthPhone, FailureReason, FlowStatus
from tests.helpers import PHONE, FlowFactory, SignalLog, stored

pytestmark = pytest.mark.django_db

BACKEND = "django_callauth.backends.CallAuthBackend"
User = get_user_model()


@pytest.fixture
def request_() -> Any:
    return RequestFactory().post("/callauth/complete/")


def user_with_phone(username: str = "alice", phone: str = PHONE, **fields: Any) -> Any:
    user = User.objects.create_user(username, password="pw", **fields)
    CallAuthPhone.objects.create(user=user, phone=phone)
    return user


# -- what is a credential -----------------------------------------------------------


def test_authenticate_a_confirmed_flow(request_: Any, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_SIGNUP = False
    alice = user_with_phone()
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    user = authenticate(request_, callauth_flow=flow)
    assert user == alice
    assert user.backend == BACKEND
    row = stored(flow)
    assert (row.status, row.user) == (FlowStatus.USED, alice)
    assert CallAuthPhone.objects.get(phone=PHONE).last_login_at is not None


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"phone": PHONE},
        {"username": PHONE},
        {"username": "alice"},
        {"callauth_phone": PHONE},
        {"callauth_flow": None},
        {"callauth_flow": "flow-id"},
        {"callauth_flow": PHONE},
    ],
    ids=["nothing", "phone", "username-phone", "username", "callauth_phone", "flow-none", "flow-id", "flow-phone"],
)
def test_nothing_but_a_flow_instance_authenticates(
    request_: Any, credentials: dict[str, Any], flow_factory: FlowFactory
) -> None:
    user_with_phone()
    User.objects.create_user(PHONE)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    credentials = {k: (str(flow.pk) if v == "flow-id" else v) for k, v in credentials.items()}
    assert CallAuthBackend().authenticate(request_, **credentials) is None
    assert authenticate(request_, **credentials) is None
    assert stored(flow).status == FlowStatus.CONFIRMED  # not consumed


def test_a_password_still_works_through_model_backend_only(request_: Any) -> None:
    user_with_phone()
    assert CallAuthBackend().authenticate(request_, username="alice", password="pw") is None
    assert (
        authenticate(request_, username="alice", password="pw").backend == "django.contrib.auth.backends.ModelBackend"
    )


@pytest.mark.parametrize("status", [FlowStatus.PENDING, FlowStatus.FAILED, FlowStatus.EXPIRED, FlowStatus.USED])
def test_only_a_confirmed_flow(request_: Any, status: str, flow_factory: FlowFactory) -> None:
    user_with_phone()
    # Confirmed by its own phone just now in every other way: only the status can refuse it.
    flow = flow_factory(status=status, caller=PHONE, confirmed_at=timezone.now())
    assert authenticate(request_, callauth_flow=flow) is None
    assert stored(flow).status == status


def test_one_login_per_flow_even_from_a_stale_instance(request_: Any, flow_factory: FlowFactory) -> None:
    user_with_phone()
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    copy = stored(flow)
    assert authenticate(request_, callauth_flow=flow) is not None
    assert authenticate(request_, callauth_flow=flow) is None
    assert copy.status == FlowStatus.CONFIRMED  # stale in memory
    assert authenticate(request_, callauth_flow=copy) is None
    assert stored(flow).status == FlowStatus.USED


def test_not_after_the_complete_window(request_: Any, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_COMPLETE_WINDOW = 300
    user_with_phone()
    flow = flow_factory(status=FlowStatus.CONFIRMED, confirmed_at=timezone.now() - timedelta(seconds=301))
    assert authenticate(request_, callauth_flow=flow) is None
    assert stored(flow).status == FlowStatus.CONFIRMED


def test_the_flow_phone_decides_not_the_caller_field(request_: Any, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_SIGNUP = False
    alice = user_with_phone()
    user_with_phone("bob", "+79007654321")
    flow = flow_factory(status=FlowStatus.CONFIRMED, caller="+79007654321")
    assert authenticate(request_, callauth_flow=flow) == alice


# -- who may log in ---------------------------------------------------------------


def test_inactive_user_is_refused(request_: Any, sent: SignalLog, flow_factory: FlowFactory) -> None:
    user_with_phone(is_active=False)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) is None
    row = stored(flow)
    assert (row.status, row.failure_reason, row.user) == (FlowStatus.FAILED, FailureReason.NOT_ALLOWED, None)
    assert [(e.signal, e.sender, e.kwargs) for e in sent] == [
        ("flow_failed", CallAuthFlow, {"flow": flow, "reason": FailureReason.NOT_ALLOWED})
    ]
    assert CallAuthPhone.objects.get().last_login_at is None


@pytest.mark.parametrize(
    ("allow_staff", "fields", "allowed"),
    [
        (False, {"is_staff": True}, False),
        (False, {"is_superuser": True}, False),
        (False, {"is_staff": True, "is_superuser": True}, False),
        (True, {"is_staff": True}, True),
        (True, {"is_superuser": True}, True),
        (True, {"is_staff": True, "is_active": False}, False),
    ],
    ids=["staff", "superuser", "both", "staff-allowed", "superuser-allowed", "inactive-staff-allowed"],
)
def test_staff_and_superusers_only_with_allow_staff(
    request_: Any, settings: Any, flow_factory: FlowFactory, allow_staff: bool, fields: dict[str, bool], allowed: bool
) -> None:
    settings.CALLAUTH_ALLOW_STAFF = allow_staff
    user = user_with_phone(**fields)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) == (user if allowed else None)
    refused = (FlowStatus.FAILED, FailureReason.NOT_ALLOWED)
    assert (stored(flow).status, stored(flow).failure_reason) == ((FlowStatus.USED, "") if allowed else refused)


# -- no account -------------------------------------------------------------------


def test_no_account_and_signup_off(request_: Any, settings: Any, sent: SignalLog, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_SIGNUP = False
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) is None
    row = stored(flow)
    assert (row.status, row.failure_reason) == (FlowStatus.FAILED, FailureReason.NO_ACCOUNT)
    assert not User.objects.exists()
    assert not CallAuthPhone.objects.exists()
    assert [(e.signal, e.sender, e.kwargs) for e in sent] == [
        ("flow_failed", CallAuthFlow, {"flow": flow, "reason": FailureReason.NO_ACCOUNT})
    ]


def test_signup_creates_a_user_with_an_unusable_password(
    request_: Any, settings: Any, flow_factory: FlowFactory
) -> None:
    settings.CALLAUTH_SIGNUP = True
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    user = authenticate(request_, callauth_flow=flow)
    assert user is not None
    assert user.username == PHONE
    assert user.has_usable_password() is False
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    link = CallAuthPhone.objects.get()
    assert (link.phone, link.user) == (PHONE, user)
    assert link.last_login_at is not None
    assert stored(flow).user == user


def test_signup_twice_for_one_phone_makes_one_account(request_: Any, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_SIGNUP = True
    first = authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED))
    second = authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED))
    assert first == second
    assert User.objects.count() == 1


def test_an_account_named_like_the_phone_is_not_adopted(
    request_: Any, settings: Any, flow_factory: FlowFactory
) -> None:
    settings.CALLAUTH_SIGNUP = True
    squatter = User.objects.create_user(PHONE, password="pw")
    user = authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED))
    assert user is not None
    assert user.pk != squatter.pk
    assert user.username.startswith(PHONE + "-")
    assert len(user.username) == len(PHONE) + 7
    assert CallAuthPhone.objects.get().user == user
    assert not squatter.callauth_phones.exists()


def test_an_account_named_like_the_phone_without_signup(
    request_: Any, settings: Any, flow_factory: FlowFactory
) -> None:
    settings.CALLAUTH_SIGNUP = False
    User.objects.create_user(PHONE, password="pw")
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) is None
    assert stored(flow).failure_reason == FailureReason.NO_ACCOUNT
    assert not CallAuthPhone.objects.exists()


def test_a_concurrent_signup_for_the_same_phone_wins(
    request_: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, flow_factory: FlowFactory
) -> None:
    # The other finisher's account appears between our lookup and our insert.
    settings.CALLAUTH_SIGNUP = True
    winner = user_with_phone("winner")
    real_get_user = CallAuthAdapter.get_user
    lookups = []

    def get_user(self: CallAuthAdapter, phone: str) -> Any:
        lookups.append(phone)
        return None if len(lookups) == 1 else real_get_user(self, phone)

    monkeypatch.setattr(CallAuthAdapter, "get_user", get_user)
    assert authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED)) == winner
    assert lookups == [PHONE, PHONE]
    assert User.objects.count() == 1
    assert CallAuthPhone.objects.get().user == winner


# -- get_user ---------------------------------------------------------------------


@pytest.mark.parametrize("active", [True, False])
def test_get_user_only_an_active_one(active: bool) -> None:
    alice = user_with_phone(is_active=active)
    assert CallAuthBackend().get_user(alice.pk) == (alice if active else None)


def test_get_user_unknown_id() -> None:
    assert CallAuthBackend().get_user(987654) is None
