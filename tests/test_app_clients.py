"""App clients (web/app.py): the JSON flow without cookies, the session in ``X-Session-Token``.

Every app here is a test client that must never hold a cookie: each answer is checked to set
none, and the client's cookie jar to stay empty. It also enforces CSRF, as a browser's
client would: an app needs no CSRF token.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.contrib import messages
from django.contrib.auth import user_logged_in
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from django_callauth import flows
from django_callauth.models import CallAuthPhone
from django_callauth.web.app import SessionTokenStrategy

from .helpers import JSON, OTHER_PHONE, PHONE, assert_json_error, sandbox_confirm, start, url

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.app_client_urls")]

HEADER = "X-Session-Token"


class App:
    """A mobile app: no cookies ever, the latest session token it was given in ``X-Session-Token``."""

    def __init__(self, token: str | None = None) -> None:
        # A 500 is an answer to check, not an exception (json_server_errors reports it as Django does).
        self.client = Client(enforce_csrf_checks=True, raise_request_exception=False)
        self.token = token

    def call(self, method: str, name: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        headers = {HEADER: self.token} if self.token else {}
        path = reverse(f"callauth:app_{name}", kwargs=kwargs)
        if method == "get":
            response = self.client.get(path, headers=headers)
        else:
            response = self.client.post(path, body or {}, content_type="application/json", headers=headers)
        assert not response.cookies, response.cookies
        assert not self.client.cookies
        self.token = response.headers.get(HEADER, self.token)
        return response

    def start(self, phone: str = PHONE) -> Any:
        return self.call("post", "start", {"phone": phone})

    def log_in(self, phone: str = PHONE) -> Any:
        """Start, play the phone in the sandbox, finish: the answer of ``app_complete``."""
        assert self.start(phone).status_code == 201
        assert self.call("post", "sandbox_call").json()["status"] == "confirmed"
        return self.call("post", "complete")


def _owner(phone: str = PHONE) -> str:
    return str(CallAuthPhone.objects.get(phone=phone).user.get_username())


def test_an_app_logs_in_without_cookies_or_csrf_and_gets_a_session_token() -> None:
    app = App()
    started = app.start()
    assert started.status_code == 201
    body = started.json()
    assert body["session_token"] == app.token == started[HEADER]
    # The URLs the answer names are the app's, which need no cookie.
    assert body["status_url"] == reverse("callauth:app_status")
    assert body["complete_url"] == reverse("callauth:app_complete")
    assert body["sandbox_call_url"] == reverse("callauth:app_sandbox_call")
    poll = app.call("get", "status")
    assert poll.json()["status"] == "pending"
    assert "session_token" not in poll.json()  # the same session: nothing new to keep
    assert app.call("post", "sandbox_call").json()["status"] == "confirmed"
    before_login = app.token
    done = app.call("post", "complete")
    assert done.status_code == 200
    assert done.json() == {"redirect": "/", "session_token": app.token}
    assert app.token != before_login  # rotated at login
    phones = app.call("get", "phones")
    assert phones.status_code == 200
    assert [phone["phone"] for phone in phones.json()["phones"]] == [PHONE]


def test_the_token_before_login_is_logged_out_by_the_rotation() -> None:
    app = App()
    assert app.start().status_code == 201
    app.call("post", "sandbox_call")
    before_login = app.token
    app.call("post", "complete")
    assert_json_error(App(before_login).call("get", "phones"), 401, "login_required")


@pytest.mark.parametrize(
    ("strategy", "view", "credentials"),
    [
        (
            "django_callauth.web.app.SessionTokenStrategy",
            "me_session_token",
            lambda body: {HEADER: body["session_token"]},
        ),
        (
            "django_callauth.contrib.drf.TokenStrategy",
            "me_token",
            lambda body: {"Authorization": f"Token {body['token']}"},
        ),
        (
            "django_callauth.contrib.simplejwt.JWTStrategy",
            "me_jwt",
            lambda body: {"Authorization": f"Bearer {body['access_token']}"},
        ),
    ],
    ids=["session-token", "drf-token", "simplejwt"],
)
def test_each_token_strategy_gives_what_the_sites_drf_view_accepts(
    settings: Any, strategy: str, view: str, credentials: Any
) -> None:
    settings.CALLAUTH_APP_TOKEN_STRATEGY = strategy
    app = App()
    body = app.log_in().json()
    assert body["session_token"] == app.token
    api = Client(enforce_csrf_checks=True)
    assert api.get(reverse(view)).status_code == 401  # nobody without the credentials
    answer = api.get(reverse(view), headers=credentials(body))
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"username": _owner()}
    assert not api.cookies


def test_the_jwt_strategy_answers_a_refresh_token_too(settings: Any) -> None:
    settings.CALLAUTH_APP_TOKEN_STRATEGY = "django_callauth.contrib.simplejwt.JWTStrategy"
    from rest_framework_simplejwt.tokens import RefreshToken

    body = App().log_in().json()
    assert set(body) == {"redirect", "session_token", "access_token", "refresh_token"}
    assert str(RefreshToken(body["refresh_token"])["user_id"]) == str(CallAuthPhone.objects.get().user.pk)


def test_the_session_token_authenticates_nobody_before_login_or_when_unknown() -> None:
    app = App()
    app.start()
    for token in (app.token, "0" * 32):
        answer = Client().get(reverse("me_session_token"), headers={HEADER: token})
        assert answer.status_code == 401
        assert answer["WWW-Authenticate"] == HEADER


def test_another_apps_token_cannot_finish_this_flow() -> None:
    """Invariant 1: the flow is the one of the session that started it."""
    owner, other = App(), App()
    assert owner.start().status_code == 201
    owner.call("post", "sandbox_call")
    assert_json_error(other.call("post", "complete"), 400, "no_flow")  # no session at all
    assert other.start(OTHER_PHONE).status_code == 201
    assert_json_error(other.call("post", "complete"), 409, "not_confirmed")  # its own flow, not this one
    assert owner.call("post", "complete").status_code == 200
    assert _owner() != "" and not CallAuthPhone.objects.filter(phone=OTHER_PHONE).exists()


def test_a_planted_token_cannot_finish_the_flow_started_with_it() -> None:
    """Invariant 13: start gives the session a new key; the token planted before is dead."""
    attacker = App()
    attacker.start(OTHER_PHONE)
    planted = attacker.token
    victim = App(planted)
    assert victim.start().status_code == 201
    assert victim.token != planted
    victim.call("post", "sandbox_call")
    assert_json_error(App(planted).call("post", "complete"), 400, "no_flow")
    assert victim.call("post", "complete").status_code == 200


@pytest.mark.parametrize("token", ["0" * 32, "x" * 300, "not a token!"], ids=["unknown", "overlong", "malformed"])
@pytest.mark.parametrize("engine", ["db", "cache"])
def test_a_token_the_store_does_not_hold_is_a_new_empty_session(settings: Any, engine: str, token: str) -> None:
    # The cache engine: an overlong or odd key never reaches the cache (a CacheKeyWarning, an error here).
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    app = App(token)
    assert_json_error(app.call("get", "status"), 400, "no_flow")
    assert app.token == token  # nothing stored, nothing given
    assert app.start().status_code == 201
    assert app.token != token
    assert App(app.token).call("get", "status").json()["status"] == "pending"
    if token == "0" * 32:  # a key the store could hold: it never does (the others are never asked for)
        assert not import_module(settings.SESSION_ENGINE).SessionStore(token).exists(token)


def test_the_app_endpoints_answer_json_whatever_the_app_accepts() -> None:
    client = Client()
    assert_json_error(client.get(reverse("callauth:app_status"), headers={"Accept": "text/html"}), 400, "no_flow")
    refused = client.get(reverse("callauth:app_start"), headers={"Accept": "text/html"})
    assert_json_error(refused, 405, "method_not_allowed")


#: What ``user_first`` saw of the request once the view had answered: the site's own session and user.
SEEN_AFTER: list[tuple[str | None, bool]] = []


def user_first(get_response: Any) -> Any:
    """A site's middleware that looks at request.user before any view and after it (a logger, a tracker)."""

    def middleware(request: HttpRequest) -> Any:
        request.user.is_authenticated  # noqa: B018  (the access evaluates the lazy user)
        response = get_response(request)
        SEEN_AFTER.append((request.session.session_key, request.user.is_authenticated))
        return response

    return middleware


@pytest.mark.parametrize("touched", [False, True], ids=["lazy-user", "user-evaluated-first"])
def test_a_browsers_session_cookie_is_no_credential_for_the_app_endpoints(settings: Any, touched: bool) -> None:
    if touched:
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.user_first"]
    browser = Client()
    sandbox_confirm(browser)
    assert browser.post(url("complete"), **JSON).status_code == 200
    SEEN_AFTER.clear()
    assert_json_error(browser.get(reverse("callauth:app_phones")), 401, "login_required")
    assert browser.get(url("phones"), **JSON).status_code == 200  # the browser is still logged in
    if touched:  # the app's session and user were the view's only: the site's code sees its own again
        assert SEEN_AFTER[0] == (browser.cookies["sessionid"].value, True)


def test_the_browser_endpoints_still_require_csrf_even_with_a_session_token() -> None:
    app = App()
    app.start()
    browser = Client(enforce_csrf_checks=True)
    assert_json_error(start(browser), 403, "csrf_failed")
    refused = browser.post(url("complete"), headers={HEADER: app.token}, **JSON)
    assert_json_error(refused, 403, "csrf_failed")


def test_messages_of_a_login_receiver_set_no_cookie() -> None:
    def greet(sender: Any, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> None:
        messages.info(request, "Welcome back")

    user_logged_in.connect(greet)
    try:
        assert App().log_in().status_code == 200  # App.call checks there is no Set-Cookie
    finally:
        user_logged_in.disconnect(greet)


def test_an_app_adds_and_removes_a_phone_with_its_session_token() -> None:
    app = App()
    app.log_in()
    added = app.call("post", "phone_add", {"phone": OTHER_PHONE})
    assert added.status_code == 201
    assert added.json()["status_url"] == reverse("callauth:app_link_status")
    assert added.json()["complete_url"] == reverse("callauth:app_link_complete")
    assert added.json()["sandbox_call_url"] == reverse("callauth:app_link_sandbox_call")
    assert app.call("post", "link_sandbox_call").json()["status"] == "confirmed"
    assert app.call("get", "link_status").json()["status"] == "confirmed"
    linked = app.call("post", "link_complete")
    assert linked.status_code == 200
    assert linked.json()["redirect"] == reverse("callauth:app_phones")
    assert _owner(OTHER_PHONE) == _owner(PHONE)
    link = CallAuthPhone.objects.get(phone=OTHER_PHONE)
    assert app.call("post", "phone_remove", link_id=link.pk).json()["removed"] == OTHER_PHONE
    assert not CallAuthPhone.objects.filter(phone=OTHER_PHONE).exists()


class FailingStrategy(SessionTokenStrategy):
    def login_payload(self, request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
        raise RuntimeError("the token service is down")


def test_a_failing_token_strategy_is_a_500_that_keeps_the_login(settings: Any) -> None:
    settings.CALLAUTH_APP_TOKEN_STRATEGY = f"{__name__}.FailingStrategy"
    app = App()
    assert_json_error(app.log_in(), 500, "server_error")
    assert app.call("get", "phones").status_code == 200  # the session token the 500 carried is logged in


def test_a_5xx_saves_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    def half_written(request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        request.session["half"] = "written"
        raise RuntimeError("the database went away")

    monkeypatch.setattr(flows, "start_flow", half_written)
    app = App()
    assert_json_error(app.start(), 500, "server_error")
    assert app.token is None


def test_a_session_deleted_during_the_request_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    app = App()
    app.start()
    save = SessionStore.save

    def deleted(self: SessionStore, must_create: bool = False) -> None:
        if not must_create:  # the new key is made; the session it holds is gone when it is saved
            raise UpdateError
        save(self, must_create)

    monkeypatch.setattr(SessionStore, "save", deleted)
    assert app.start().status_code == 400
