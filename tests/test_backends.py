"""``CallAuthBackend`` authenticates a confirmed flow, never a phone (docs/security.rst, invariants 5, 7, 12)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import Client, RequestFactory
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

    def get_user(self: CallAuthAdapter, request: Any, phone: str) -> Any:
        lookups.append(phone)
        return None if len(lookups) == 1 else real_get_user(self, request, phone)

    monkeypatch.setattr(CallAuthAdapter, "get_user", get_user)
    assert authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED)) == winner
    assert lookups == [PHONE, PHONE]
    assert User.objects.count() == 1
    assert CallAuthPhone.objects.get().user == winner


# -- get_user ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow_staff", "fields", "kept"),
    [
        (False, {}, True),
        (False, {"is_active": False}, False),
        (False, {"is_staff": True}, False),
        (False, {"is_superuser": True}, False),
        (True, {"is_staff": True}, True),
        (True, {"is_superuser": True, "is_active": False}, False),
    ],
    ids=["user", "inactive", "staff", "superuser", "staff-allowed", "inactive-superuser-allowed"],
)
def test_get_user_only_one_who_may_log_in_by_call(
    settings: Any, allow_staff: bool, fields: dict[str, bool], kept: bool
) -> None:
    # Django asks this on every request of a session the backend made: the same rule as a login.
    settings.CALLAUTH_ALLOW_STAFF = allow_staff
    alice = user_with_phone(**fields)
    assert CallAuthBackend().get_user(alice.pk) == (alice if kept else None)


def test_get_user_asks_the_adapter(settings: Any) -> None:
    settings.CALLAUTH_ADAPTER = "tests.test_adapter.ProjectAdapter"  # refuses first_name "blocked"
    blocked = user_with_phone(first_name="blocked")
    assert CallAuthBackend().get_user(blocked.pk) is None


def test_get_user_when_the_adapter_raises_is_anonymous_not_a_500(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alice = user_with_phone()
    client.force_login(alice, backend=BACKEND)

    def broken(self: CallAuthAdapter, request: Any, user: Any) -> bool:
        raise RuntimeError("profile service down")

    monkeypatch.setattr(CallAuthAdapter, "is_login_allowed", broken)
    assert client.get("/")["Location"].startswith("/login/")
    assert [(r.name, r.levelname, r.exc_info is not None) for r in caplog.records] == [
        ("django_callauth", "ERROR", True)
    ]
    monkeypatch.undo()
    assert client.get("/").status_code == 200  # the session was kept: fixed code, logged in again


def test_a_session_made_by_a_call_ends_when_the_user_is_made_staff(client: Client) -> None:
    alice = user_with_phone()
    client.force_login(alice, backend=BACKEND)
    assert client.get("/").status_code == 200
    User.objects.filter(pk=alice.pk).update(is_staff=True)
    assert client.get("/")["Location"].startswith("/login/")


def test_a_password_session_of_a_user_made_staff_is_not_ours_to_end(client: Client) -> None:
    # Sessions remember their backend; ModelBackend's own rules apply to its sessions.
    alice = user_with_phone()
    assert client.login(username="alice", password="pw")
    User.objects.filter(pk=alice.pk).update(is_staff=True)
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_get_user_unknown_id() -> None:
    assert CallAuthBackend().get_user(987654) is None


# -- a phone's proof ages (invariant 19) --------------------------------------------


def aged_link(*, added: int, last_login: int | None = None, username: str = "alice", **fields: Any) -> CallAuthPhone:
    """A link to a new user, added ``added`` days ago, last logged in ``last_login`` days ago (None: never)."""
    now = timezone.now()
    user = User.objects.create_user(username, password="pw", **fields)
    return CallAuthPhone.objects.create(
        user=user,
        phone=PHONE,
        created_at=now - timedelta(days=added),
        last_login_at=None if last_login is None else now - timedelta(days=last_login),
    )


class TrustingAdapter(CallAuthAdapter):
    """A site that lets accounts named "trusted" log in by an old phone (it asks something else)."""

    def is_phone_dormant(self, request: Any, link: CallAuthPhone) -> bool:
        return link.user.get_username() != "trusted" and super().is_phone_dormant(request, link)


@pytest.mark.parametrize(
    ("added", "last_login", "dormant"),
    [
        (89, None, False),
        (90, None, True),
        (730, 89, False),
        (730, 90, True),
        (730, 730, True),
    ],
    ids=["added-89-days-ago", "added-90-days-ago", "logged-in-89-days-ago", "logged-in-90-days-ago", "two-years"],
)
def test_a_phone_silent_for_90_days_no_longer_logs_in(
    request_: Any, sent: SignalLog, flow_factory: FlowFactory, added: int, last_login: int | None, dormant: bool
) -> None:
    link = aged_link(added=added, last_login=last_login)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    user = authenticate(request_, callauth_flow=flow)
    row = stored(flow)
    if not dormant:
        assert user == link.user
        assert row.status == FlowStatus.USED
        return
    assert user is None
    assert (row.status, row.failure_reason, row.user) == (FlowStatus.FAILED, FailureReason.DORMANT, None)
    assert [(e.signal, e.kwargs) for e in sent] == [("flow_failed", {"flow": flow, "reason": FailureReason.DORMANT})]
    assert CallAuthPhone.objects.get().last_login_at == link.last_login_at  # not refreshed by the refusal


def test_a_phone_is_dormant_before_anything_about_its_account(
    request_: Any, settings: Any, flow_factory: FlowFactory
) -> None:
    # Whoever holds the number now learns nothing about the account (staff here) from the refusal.
    settings.CALLAUTH_ALLOW_STAFF = False
    aged_link(added=730, is_staff=True)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) is None
    assert stored(flow).failure_reason == FailureReason.DORMANT


def test_max_idle_days_none_lets_any_old_phone_log_in(request_: Any, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_PHONE_MAX_IDLE_DAYS = None
    link = aged_link(added=3650, last_login=3650)
    assert authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED)) == link.user


def test_max_idle_days_is_read_at_login(request_: Any, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_PHONE_MAX_IDLE_DAYS = 7
    aged_link(added=30, last_login=8)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) is None
    assert stored(flow).failure_reason == FailureReason.DORMANT


@pytest.mark.parametrize(("username", "logs_in"), [("trusted", True), ("alice", False)])
def test_the_adapter_decides_whether_a_phone_is_dormant(
    request_: Any, settings: Any, flow_factory: FlowFactory, username: str, logs_in: bool
) -> None:
    settings.CALLAUTH_ADAPTER = "tests.test_backends.TrustingAdapter"
    link = aged_link(added=730, username=username)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) == (link.user if logs_in else None)
    assert stored(flow).status == (FlowStatus.USED if logs_in else FlowStatus.FAILED)


def test_the_adapter_is_asked_with_the_request_and_the_link(
    request_: Any, monkeypatch: pytest.MonkeyPatch, flow_factory: FlowFactory
) -> None:
    asked: list[tuple[Any, Any]] = []
    monkeypatch.setattr(CallAuthAdapter, "is_phone_dormant", lambda self, request, link: asked.append((request, link)))
    link = aged_link(added=0)
    assert authenticate(request_, callauth_flow=flow_factory(status=FlowStatus.CONFIRMED)) == link.user
    assert asked == [(request_, link)]
