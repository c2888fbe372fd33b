"""The adapter: the default policy, and a project's override through ``CALLAUTH_ADAPTER``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest
from django.test import RequestFactory
from django.utils import timezone

from django_callauth.adapter import CallAuthAdapter, get_adapter
from django_callauth.models import CallAuthPhone, FailureReason, FlowStatus
from tests.helpers import PHONE, FlowFactory

User = get_user_model()


class ProjectAdapter(CallAuthAdapter):
    """What a project might write: phones kept on the user, its own sign-up rule and names."""

    def get_user(self, request: HttpRequest | None, phone: str) -> Any | None:
        return User.objects.filter(last_name=phone).first()

    def is_signup_allowed(self, request: HttpRequest | None, phone: str) -> bool:
        return phone.startswith("+7900")

    def username_for_phone(self, request: HttpRequest | None, phone: str) -> str:
        return "user" + phone[2:]

    def is_login_allowed(self, request: HttpRequest | None, user: Any) -> bool:
        return super().is_login_allowed(request, user) and user.first_name != "blocked"

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return "/welcome/"


@pytest.fixture
def project_adapter(settings: Any) -> None:
    settings.CALLAUTH_ADAPTER = "tests.test_adapter.ProjectAdapter"


# -- choosing the adapter -------------------------------------------------------------


def test_default_adapter(settings: Any) -> None:
    settings.CALLAUTH_ADAPTER = "django_callauth.adapter.CallAuthAdapter"
    assert type(get_adapter()) is CallAuthAdapter


def test_adapter_from_the_setting_read_at_call_time(project_adapter: None) -> None:
    adapter = get_adapter()
    assert type(adapter).__module__ == "tests.test_adapter"
    assert type(adapter).__qualname__ == "ProjectAdapter"
    assert adapter.username_for_phone(None, PHONE) == "user9001234567"
    assert get_adapter() is not adapter  # a new one for every call


def test_missing_adapter_is_an_import_error(settings: Any) -> None:
    settings.CALLAUTH_ADAPTER = "tests.test_adapter.NoSuchAdapter"
    with pytest.raises(ImportError, match="NoSuchAdapter"):
        get_adapter()


# -- the overridden adapter drives the backend ------------------------------------------


@pytest.mark.django_db
def test_override_finds_users_its_own_way(project_adapter: None, flow_factory: FlowFactory) -> None:
    alice = User.objects.create_user("alice", last_name=PHONE)
    user = authenticate(RequestFactory().get("/"), callauth_flow=flow_factory(status=FlowStatus.CONFIRMED))
    assert user == alice
    assert not CallAuthPhone.objects.exists()


@pytest.mark.django_db
def test_override_names_new_users(project_adapter: None, flow_factory: FlowFactory) -> None:
    user = authenticate(RequestFactory().get("/"), callauth_flow=flow_factory(status=FlowStatus.CONFIRMED))
    assert user is not None
    assert user.username == "user9001234567"
    assert CallAuthPhone.objects.get().user == user


@pytest.mark.django_db
def test_override_decides_who_may_sign_up(project_adapter: None, settings: Any, flow_factory: FlowFactory) -> None:
    settings.CALLAUTH_SIGNUP = True  # the project's adapter ignores it
    flow = flow_factory(status=FlowStatus.CONFIRMED, phone="+79991234567")
    assert authenticate(RequestFactory().get("/"), callauth_flow=flow) is None
    flow.refresh_from_db()
    assert flow.failure_reason == FailureReason.NO_ACCOUNT
    assert not User.objects.exists()


@pytest.mark.django_db
def test_override_decides_who_may_log_in(project_adapter: None, flow_factory: FlowFactory) -> None:
    User.objects.create_user("alice", first_name="blocked", last_name=PHONE)
    flow = flow_factory(status=FlowStatus.CONFIRMED)
    assert authenticate(RequestFactory().get("/"), callauth_flow=flow) is None
    flow.refresh_from_db()
    assert flow.failure_reason == FailureReason.NOT_ALLOWED


def test_override_redirect(project_adapter: None) -> None:
    assert get_adapter().get_login_redirect_url(RequestFactory().get("/")) == "/welcome/"


# -- the default policy ----------------------------------------------------------------


@pytest.mark.django_db
def test_default_get_user_follows_the_phone_link_only(alice: Any) -> None:
    adapter = CallAuthAdapter()
    User.objects.create_user(PHONE)
    assert adapter.get_user(None, PHONE) is None
    CallAuthPhone.objects.create(user=alice, phone=PHONE)
    assert adapter.get_user(None, PHONE) == alice
    assert adapter.get_user(None, "+79007654321") is None


@pytest.mark.parametrize(
    ("value", "allowed"), [(True, True), (False, False), (None, False)], ids=["on", "off", "unset"]
)
def test_default_signup_follows_the_setting_off_when_unset(settings: Any, value: bool | None, allowed: bool) -> None:
    if value is None:
        del settings.CALLAUTH_SIGNUP
    else:
        settings.CALLAUTH_SIGNUP = value
    assert CallAuthAdapter().is_signup_allowed(None, PHONE) is allowed


@pytest.mark.parametrize(
    ("flags", "allow_staff", "allowed"),
    [
        ({}, False, True),
        ({"is_active": False}, False, False),
        ({"is_staff": True}, False, False),
        ({"is_superuser": True}, False, False),
        ({"is_staff": True}, True, True),
        ({"is_superuser": True}, True, True),
        ({"is_active": False, "is_staff": True}, True, False),
    ],
)
def test_default_login_policy(settings: Any, flags: dict[str, bool], allow_staff: bool, allowed: bool) -> None:
    settings.CALLAUTH_ALLOW_STAFF = allow_staff
    assert CallAuthAdapter().is_login_allowed(None, User(username="u", **flags)) is allowed


def test_default_login_policy_for_a_user_model_without_flags() -> None:
    class Minimal:
        pk = 1

    assert CallAuthAdapter().is_login_allowed(None, Minimal()) is True  # type: ignore[arg-type]


@pytest.mark.django_db
def test_default_record_login(alice: Any) -> None:
    link = CallAuthPhone.objects.create(user=alice, phone=PHONE)
    other = CallAuthPhone.objects.create(user=alice, phone="+79007654321")
    CallAuthAdapter().record_login(None, alice, PHONE)
    link.refresh_from_db()
    other.refresh_from_db()
    assert link.last_login_at is not None
    assert other.last_login_at is None


@pytest.mark.parametrize(
    ("max_idle", "added", "last_login", "dormant"),
    [
        ("unset", 89, None, False),
        ("unset", 90, None, True),
        ("unset", 400, 89, False),
        ("unset", 400, 90, True),
        (30, 40, 29, False),
        (30, 40, 31, True),
        # Added again (flows/linking.py) after the last login: the later of the two counts.
        (30, 10, 200, False),
        (None, 3650, 3650, False),
    ],
)
def test_default_is_phone_dormant(
    settings: Any, max_idle: Any, added: int, last_login: int | None, dormant: bool
) -> None:
    if max_idle == "unset":
        del settings.CALLAUTH_PHONE_MAX_IDLE_DAYS
    else:
        settings.CALLAUTH_PHONE_MAX_IDLE_DAYS = max_idle
    now = timezone.now()
    link = CallAuthPhone(
        phone=PHONE,
        created_at=now - timedelta(days=added),
        last_login_at=None if last_login is None else now - timedelta(days=last_login),
    )
    assert CallAuthAdapter().is_phone_dormant(RequestFactory().post("/"), link) is dormant


def test_default_redirect_is_login_redirect_url(settings: Any) -> None:
    settings.LOGIN_REDIRECT_URL = "home"
    assert CallAuthAdapter().get_login_redirect_url(RequestFactory().get("/")) == "/"
    settings.LOGIN_REDIRECT_URL = "/account/"
    assert CallAuthAdapter().get_login_redirect_url(RequestFactory().get("/")) == "/account/"
