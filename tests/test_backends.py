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
        {"callauth_flow": "flow-pk"},
        {"callauth_flow": {"phone": PHONE}},
    ],
    ids=str,
)
def test_nothing_but_a_flow_instance_authenticates(
    request_: Any, credentials: dict[str, Any], flow_factory: FlowFactory
) -> None:
    user_with_phone()
    User.objects.create_user(PHONE)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    ids = {"flow-id": str(flow.pk), "flow-pk": flow.pk}
    credentials = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in credentials.items()}
    assert CallAuthBackend().authenticate(request_, **credentials) is None
    assert authenticate(request_, **credentials) is None
    assert stored(flow).status == FlowStatus.CONFIRMED  # not consumed


def test_a_password_still_works_through_model_backend_only(request_: Any) -> None:
    user_with_phone()
    assert CallAuthBackend().authenticate(request_, username="alice", password="pw") is None
    assert (
        authenticate(request_, username="alice", password="pw").backend == "django.contrib.auth.backends.ModelBackend"
    )


def test_one_login_per_flow_even_from_a_stale_instance(request_: Any, flow_factory: FlowFactory) -> None:
    user_with_phone()
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    copy = stored(flow)
    assert authenticate(request_, callauth_flow=flow) is not None
    assert authenticate(request_, callauth_flow=flow) is None
    assert copy.status == FlowStatus.CONFIRMED  # stale in memory
    assert authenticate(request_, callauth_flow=copy) is None
    assert stored(flow).status == FlowStatus.USED


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


@pytest.mark.parametrize(("fields", "kept"), [({}, True), ({"is_staff": True}, False)], ids=["user", "staff"])
def test_get_user_only_one_who_may_log_in_by_call(fields: dict[str, bool], kept: bool) -> None:
    # Django asks this on every request of a session the backend made: the same rule as a login
    # (the rule's cases: test_adapter.py::test_default_login_policy).
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


def test_a_silent_phone_no_longer_logs_in(request_: Any, sent: SignalLog, flow_factory: FlowFactory) -> None:
    # Where the 90 days end: test_adapter.py::test_default_is_phone_dormant.
    link = aged_link(added=730, last_login=730)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) is None
    row = stored(flow)
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


@pytest.mark.parametrize("dormant", [True, False])
def test_the_adapter_decides_whether_a_phone_is_dormant(
    request_: Any, monkeypatch: pytest.MonkeyPatch, flow_factory: FlowFactory, dormant: bool
) -> None:
    asked: list[tuple[Any, Any]] = []

    def is_phone_dormant(self: CallAuthAdapter, request: Any, link: CallAuthPhone) -> bool:
        asked.append((request, link))
        return dormant

    monkeypatch.setattr(CallAuthAdapter, "is_phone_dormant", is_phone_dormant)
    link = aged_link(added=0)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(request_, callauth_flow=flow) == (None if dormant else link.user)
    assert stored(flow).status == (FlowStatus.FAILED if dormant else FlowStatus.USED)
    assert asked == [(request_, link)]
