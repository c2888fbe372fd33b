"""App clients: the JSON endpoints for a mobile app, with the session in a header, not a cookie.

An app keeps no cookies and sends no CSRF token. ``app_view`` serves the same views to it
under ``app/v1/``: it swaps ``request.session`` for the session the ``X-Session-Token``
header names (``settings.SESSION_ENGINE``), asks for JSON, calls the view, saves the
session and hands its key back in the answer. So the flow is bound to that session
exactly as to a browser's (invariant 1), the key changes when a flow starts (invariant
13) and at login, and a token the store does not know is a new, empty session, never
someone else's. CSRF protects cookies a browser sends on its own; a header is only ever
sent by code that holds the token, so no CSRF check is needed here.

Nothing the app client does touches the browser's session, cookies or messages: they are
put back as they were before the answer leaves, so no middleware sets a cookie on it.

After a login, ``CALLAUTH_APP_TOKEN_STRATEGY`` adds what the app uses for the site's own
API (a DRF token, JWTs: ``django_callauth.contrib``); by default the session token itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from .. import errors
from ..conf import app_settings
from .negotiation import error_response

logger = logging.getLogger("django_callauth")

#: The request header an app sends its session token in, and the answer's header with a new one.
HEADER = "X-Session-Token"
#: The browser URLs a JSON answer names, by the name of their app counterpart.
_APP_URLS = (
    "status",
    "events",
    "complete",
    "sandbox_call",
    "phones",
    "link_status",
    "link_events",
    "link_complete",
    "link_sandbox_call",
)
#: What the view may set on the request that belongs to the browser's request: put back afterwards.
_REQUEST_STATE = ("session", "user", "_cached_user", "_acached_user", "_messages", "_dont_enforce_csrf_checks")


class SessionTokenStrategy:
    """What ``app_complete`` answers besides ``session_token`` once someone is logged in.

    The default adds nothing: the app sends the session token on its later requests, and
    the site's DRF views read it with ``contrib.drf.SessionTokenAuthentication``. A
    subclass returns the tokens it makes for ``user`` (``contrib.drf.TokenStrategy``,
    ``contrib.simplejwt.JWTStrategy``).
    """

    def login_payload(self, request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
        return {}


def get_token_strategy() -> SessionTokenStrategy:
    strategy_class: type[SessionTokenStrategy] = import_string(app_settings.APP_TOKEN_STRATEGY)
    return strategy_class()


def session_for(token: str | None) -> SessionBase:
    """The session ``token`` names; a new, empty one when it names none (unknown, expired, malformed).

    Django's stores take any string: one they do not hold (or cannot hold: overlong, odd
    characters) loads as empty, and saving gives it a new random key, so a token an attacker
    picks never becomes anybody's session.
    """
    engine = import_module(settings.SESSION_ENGINE)
    session: SessionBase = engine.SessionStore(session_key=token)
    return session


def user_for_token(token: str) -> AbstractBaseUser | None:
    """The user logged in in the session ``token`` names, checked as Django checks a session cookie.

    ``auth.get_user`` asks the backend (a user deactivated or made staff is nobody) and
    verifies the session's password hash (a password change logs the session out).
    """
    probe = HttpRequest()
    probe.session = session_for(token)
    user = auth.get_user(probe)
    return user if isinstance(user, AbstractBaseUser) and user.is_authenticated else None


def _as_app_client(request: HttpRequest, token: str | None) -> None:
    """Make ``request`` the app's: its session, its user, JSON, no CSRF check, no messages kept."""
    request.session = session_for(token)
    for cached in ("_cached_user", "_acached_user"):
        request.__dict__.pop(cached, None)
    request.user = SimpleLazyObject(lambda: auth.get_user(request))  # type: ignore[assignment]
    # A storage of its own whose update() nobody calls: what is added for the app is dropped,
    # never stored in a cookie or in the browser's session by MessageMiddleware.
    request._messages = default_storage(request)  # type: ignore[attr-defined]
    # What the test client sets: Django's CSRF check accepts the request (a header, not a cookie).
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
    # JSON, whatever the app sent: the views decide by Accept (negotiation.wants_json).
    request.META["HTTP_ACCEPT"] = "application/json"
    for cached in ("headers", "accepted_types", "accepted_types_by_precedence"):
        request.__dict__.pop(cached, None)


def _save(session: SessionBase) -> None:
    """Save a changed session as SessionMiddleware does; a session deleted meanwhile is its 400."""
    if session.modified and not session.is_empty():
        try:
            session.save()
        except UpdateError:
            raise SessionInterrupted("The session was deleted before the request completed.") from None


def _rewrite(data: dict[str, Any]) -> None:
    """Point the URLs an answer names at their app counterparts, which the app can call."""
    urls = {reverse(f"callauth:{name}"): reverse(f"callauth:app_{name}") for name in _APP_URLS}
    for key, value in data.items():
        if (key.endswith("_url") or key == "redirect") and value in urls:
            data[key] = urls[value]


def _json_object(response: HttpResponse) -> dict[str, Any] | None:
    """The body of a success, which is always a JSON object here (the request asked for JSON); else None."""
    if response.status_code >= 300:
        return None
    data: dict[str, Any] = json.loads(response.content)
    return data


def _answer(request: HttpRequest, response: HttpResponse, token: str | None, extra: dict[str, Any]) -> HttpResponse:
    """The view's answer as the app gets it: app URLs, the new session token, no cookies."""
    new_token = request.session.session_key
    if new_token == token:
        new_token = None
    data = _json_object(response)
    if data is not None:
        _rewrite(data)
        data.update(extra)
        if new_token:
            data["session_token"] = new_token
        response.content = json.dumps(data, cls=DjangoJSONEncoder).encode()
    if new_token:
        # Errors too carry it, in a header: a start refused after the key changed still moved the session.
        response[HEADER] = new_token
    # The device cookie, the CSRF cookie login() rotates (set here by the views' CSRF decorator, which
    # then tells the site's middleware it is done): an app keeps none, and its session is in the header.
    response.cookies.clear()
    return response


def app_view(view: Callable[..., HttpResponse], *, login: bool = False) -> Callable[..., HttpResponse]:
    """Serve ``view`` to app clients: the session in ``X-Session-Token``, JSON only, no cookies.

    ``login``: the view logs people in (``complete``); the answer then carries the
    token strategy's tokens too.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = request.headers.get(HEADER)
        saved = {name: request.__dict__[name] for name in _REQUEST_STATE if name in request.__dict__}
        _as_app_client(request, token)
        try:
            response = view(request, *args, **kwargs)
            logged_in = login and response.status_code == 200 and request.user.is_authenticated
            extra: dict[str, Any] = {}
            if logged_in:
                user: Any = request.user
                try:
                    extra = get_token_strategy().login_payload(request, user)
                except Exception:
                    # Project code after the login: the session is saved below, logged in, and
                    # its token in the answer's header still works (invariant 14).
                    logger.exception("The app token strategy failed after a login; the session token still works")
                    response = error_response(request, errors.SERVER_ERROR)
            # As SessionMiddleware, no session is saved at a 5xx; a finished login is, though.
            if logged_in or response.status_code < 500:
                _save(request.session)
            return _answer(request, response, token, extra)
        finally:
            for name in _REQUEST_STATE:
                request.__dict__.pop(name, None)
            request.__dict__.update(saved)

    return csrf_exempt(wrapper)
