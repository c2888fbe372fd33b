"""django_callauth.contrib.allauth against real django-allauth (account and MFA): invariant 21.

These tests need allauth's apps and tables, so they run with their own settings
(tests/settings_allauth.py) in a pytest run of their own, as .ci/run and tox do:
``DJANGO_SETTINGS_MODULE=tests.settings_allauth pytest tests/test_contrib_allauth.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

if "django_callauth.contrib.allauth" not in settings.INSTALLED_APPS:
    pytest.skip(
        "the allauth bridge runs with its own settings: "
        "DJANGO_SETTINGS_MODULE=tests.settings_allauth pytest tests/test_contrib_allauth.py",
        allow_module_level=True,
    )

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.models import EmailAddress
from allauth.account.signals import authentication_step_completed, user_logged_in
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse

from django_callauth.models import CallAuthPhone, FlowStatus
from tests.helpers import (
    OTHER_PHONE,
    PHONE,
    assert_json_error,
    complete,
    logged_in_user,
    page_forms,
    sandbox_confirm,
    url,
)

pytestmark = pytest.mark.django_db


def totp_code(secret: str) -> str:
    """The code the user's authenticator app shows now, as allauth computes it."""
    from allauth.mfa.totp.internal.auth import yield_hotp_counters_from_time

    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    """A user whose phone is linked, with no MFA."""
    user = django_user_model.objects.create_user(username="bob")
    CallAuthPhone.objects.create(user=user, phone=PHONE)
    return user


@pytest.fixture
def totp_secret(bob: Any) -> str:
    """Bob turned on two-factor authentication (TOTP) in allauth."""
    secret = generate_totp_secret()
    TOTP.activate(bob, secret)
    return secret


@pytest.fixture
def allauth_logins() -> Iterator[list[Any]]:
    received: list[Any] = []

    def receiver(sender: Any, user: Any, **kwargs: Any) -> None:
        received.append(user)

    user_logged_in.connect(receiver)
    yield received
    user_logged_in.disconnect(receiver)


def methods(client: Client) -> list[str]:
    return [record["method"] for record in client.session.get("account_authentication_methods", [])]


# -- 1. a login by call goes through allauth's stages ---------------------------------------------


def test_a_totp_user_is_asked_for_his_code_after_the_call_and_logged_in_only_by_it(
    bob: Any, totp_secret: str, allauth_logins: list[Any]
) -> None:
    client = Client()
    flow = sandbox_confirm(client, next="/after/")
    response = complete(client)
    assert response.status_code == 200
    assert response.json() == {"redirect": reverse("mfa_authenticate")}
    assert logged_in_user(client) is None
    assert allauth_logins == []
    flow.refresh_from_db()
    assert flow.status == FlowStatus.USED
    assert_json_error(complete(client), 400, "no_flow")  # one flow, one login: the stage pending or not
    # The page allauth asks for the code on; a wrong code logs nobody in.
    assert client.get(reverse("mfa_authenticate")).status_code == 200
    client.post(reverse("mfa_authenticate"), {"code": "000000" if totp_code(totp_secret) != "000000" else "111111"})
    assert logged_in_user(client) is None
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(totp_secret)})
    assert response["Location"] == reverse("mfa_trust")  # allauth's next stage: "trust this browser"
    assert logged_in_user(client) is None
    response = client.post(reverse("mfa_trust"), {"action": "trust"})
    assert response.status_code == 302
    assert response["Location"] == "/after/"  # the next the login by call was started with
    assert logged_in_user(client) == str(bob.pk)
    assert allauth_logins == [bob]
    assert methods(client) == ["phone_call", "mfa"]


def test_a_browser_trusted_in_allauth_logs_the_totp_user_in_by_the_call_alone(bob: Any, totp_secret: str) -> None:
    client = Client()
    sandbox_confirm(client)
    complete(client)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(totp_secret)})
    client.post(reverse("mfa_trust"), {"action": "trust"})
    client.post(reverse("account_logout"))
    assert logged_in_user(client) is None
    sandbox_confirm(client)
    assert complete(client).json() == {"redirect": reverse(settings.LOGIN_REDIRECT_URL)}
    assert logged_in_user(client) == str(bob.pk)


def test_a_totp_user_without_javascript_is_sent_to_the_code_page(bob: Any, totp_secret: str) -> None:
    client = Client()
    sandbox_confirm(client)
    response = client.post(url("complete"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert logged_in_user(client) is None


def test_a_user_without_mfa_is_logged_in_by_the_call_with_allauths_record(bob: Any, allauth_logins: list[Any]) -> None:
    steps: list[dict[str, Any]] = []

    def step(sender: Any, **kwargs: Any) -> None:
        steps.append(kwargs)

    authentication_step_completed.connect(step)
    try:
        client = Client()
        sandbox_confirm(client)
        response = complete(client)
    finally:
        authentication_step_completed.disconnect(step)
    assert response.status_code == 200
    assert response.json() == {"redirect": reverse(settings.LOGIN_REDIRECT_URL)}
    assert logged_in_user(client) == str(bob.pk)
    assert allauth_logins == [bob]
    [record] = client.session["account_authentication_methods"]
    assert record["method"] == "phone_call"
    assert record["phone"] == PHONE
    assert [(s["method"], s["phone"]) for s in steps] == [("phone_call", PHONE)]


def test_a_failing_receiver_of_allauths_login_signal_does_not_lose_the_login(bob: Any) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("project code")

    user_logged_in.connect(broken)
    try:
        client = Client()
        sandbox_confirm(client)
        response = complete(client)
    finally:
        user_logged_in.disconnect(broken)
    assert response.status_code == 200
    assert logged_in_user(client) == str(bob.pk)


def test_a_signup_by_call_goes_through_allauth_too(allauth_logins: list[Any]) -> None:
    client = Client()
    sandbox_confirm(client, OTHER_PHONE)
    assert complete(client).status_code == 200
    [user] = allauth_logins
    assert logged_in_user(client) == str(user.pk)


# -- 2. allauth's phone interface; the form on allauth's login page --------------------------------


def test_a_phone_linked_by_a_call_is_a_verified_phone_in_allauth(allauth_logins: list[Any]) -> None:
    client = Client()
    sandbox_confirm(client)
    complete(client)
    [user] = allauth_logins
    adapter = get_account_adapter()
    assert adapter.get_phone(user) == (PHONE, True)
    assert adapter.get_user_by_phone("+7 900 123-45-67") == user
    # allauth's email page shows no placeholder address for a user signed up by phone.
    assert client.get(reverse("account_email")).status_code == 200
    assert not EmailAddress.objects.filter(user=user).exists()


def test_allauth_stores_only_verified_phones_and_never_moves_one(bob: Any, django_user_model: Any) -> None:
    adapter = get_account_adapter()
    carol = django_user_model.objects.create_user(username="carol")
    assert adapter.get_phone(carol) is None
    adapter.set_phone(carol, OTHER_PHONE, False)
    assert adapter.get_phone(carol) is None
    assert adapter.get_user_by_phone(OTHER_PHONE) is None
    adapter.set_phone(carol, OTHER_PHONE, True)
    assert adapter.get_phone(carol) == (OTHER_PHONE, True)
    adapter.set_phone_verified(carol, PHONE)  # bob's phone stays bob's
    assert adapter.get_user_by_phone(PHONE) == bob
    adapter.set_phone_verified(carol, "+15005550006")  # not a phone a call logs in from
    assert list(CallAuthPhone.objects.filter(user=carol).values_list("phone", flat=True)) == [OTHER_PHONE]
    assert adapter.get_user_by_phone("not a phone") is None


def test_allauths_login_page_offers_the_login_by_call(bob: Any) -> None:
    client = Client()
    page = client.get(reverse("account_login"))
    [phone_form] = [form for form in page_forms(page.content.decode()) if form.action == url("start")]
    response = client.post(phone_form.action, {**phone_form.fields, "phone": PHONE})
    assert response.status_code == 302
    assert response["Location"] == url("challenge")


# -- 3. the check -----------------------------------------------------------------------------------


def test_the_check_is_silent_with_the_bridge() -> None:
    assert [m.id for m in run_checks() if m.id.startswith("callauth.") and not m.is_silenced()] == []


# -- 4. allauth headless: the app's session token is allauth's too -----------------------------------

HEADLESS_SESSION = "/_allauth/app/v1/auth/session"
HEADLESS_2FA = "/_allauth/app/v1/auth/2fa/authenticate"


def app_log_in(app: Client) -> tuple[Any, str]:
    """An app (no cookies, no CSRF token) logs in by call: start, the sandbox call, complete.

    The answer of ``app_complete`` and the app's session token after it.
    """
    token = ""
    for name in ("start", "sandbox_call", "complete"):
        headers = {"X-Session-Token": token} if token else {}
        response = app.post(reverse(f"callauth:app_{name}"), {"phone": PHONE}, "application/json", headers=headers)
        assert response.status_code < 300, response.content
        token = response.headers.get("X-Session-Token", token)
    assert not app.cookies
    return response, token


def test_the_apps_session_token_logs_it_in_on_allauths_headless_endpoints(bob: Any) -> None:
    app = Client(enforce_csrf_checks=True)
    done, token = app_log_in(app)
    assert done.json()["session_token"] == token
    response = app.get(HEADLESS_SESSION, headers={"X-Session-Token": token})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["is_authenticated"] is True
    assert body["data"]["user"]["id"] == bob.pk
    assert [method["method"] for method in body["data"]["methods"]] == ["phone_call"]
    assert app.get(HEADLESS_SESSION).status_code == 401  # the token, not a cookie, is what logs it in


def test_headless_reports_a_totp_users_pending_code_and_takes_it_from_the_app(bob: Any, totp_secret: str) -> None:
    app = Client(enforce_csrf_checks=True)
    done, token = app_log_in(app)
    assert "session_token" not in done.json()  # nobody logged in yet: the token from start still holds
    response = app.get(HEADLESS_SESSION, headers={"X-Session-Token": token})
    assert response.status_code == 401
    assert response.json()["meta"]["is_authenticated"] is False
    [stage] = [flow for flow in response.json()["data"]["flows"] if flow.get("is_pending")]
    assert stage == {"id": "mfa_authenticate", "is_pending": True, "types": ["totp"]}
    # The app sends the code to headless's own endpoint; the login by call ends there.
    response = app.post(
        HEADLESS_2FA, {"code": totp_code(totp_secret)}, "application/json", headers={"X-Session-Token": token}
    )
    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == bob.pk
    assert [method["method"] for method in response.json()["data"]["methods"]] == ["phone_call", "mfa"]
    token = response.json()["meta"]["session_token"]  # headless rotated the key at the login
    assert app.get(HEADLESS_SESSION, headers={"X-Session-Token": token}).status_code == 200
    assert not app.cookies
