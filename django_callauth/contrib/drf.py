"""Django REST framework for app clients: its authtoken after a login, and the session token as credentials.

Only this module imports DRF. ``TokenStrategy`` needs ``"rest_framework.authtoken"`` in
``INSTALLED_APPS`` (its table); ``SessionTokenAuthentication`` needs nothing more.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ..web.app import HEADER, SessionTokenStrategy, user_for_token


class TokenStrategy(SessionTokenStrategy):
    """``CALLAUTH_APP_TOKEN_STRATEGY``: ``{"token": ...}``, the user's DRF token (``TokenAuthentication``).

    DRF keeps one token per user: every app of the user gets the same one, and it lasts
    until it is deleted (DRF's ``drf_create_token --reset``, or the admin).
    """

    def login_payload(self, request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
        # Imported here: the model's module needs the app installed, which only this strategy asks for.
        from rest_framework.authtoken.models import Token

        token, _created = Token.objects.get_or_create(user=user)
        return {"token": token.key}


class SessionTokenAuthentication(BaseAuthentication):  # type: ignore[misc]  # DRF ships no types
    """DRF authentication by the app's session token (``X-Session-Token``): the user logged in in it.

    The session is checked as Django checks a session cookie (the backend still accepts
    the user, the password did not change). No CSRF check: only code holding the token
    can send the header. A token of no logged-in session authenticates nobody, so the
    view's permissions decide (401 for ``IsAuthenticated``).
    """

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, None] | None:
        token = request.headers.get(HEADER)
        user = user_for_token(token) if token else None
        return (user, None) if user is not None else None

    def authenticate_header(self, request: Request) -> str:
        # A 401 (not 403) with this WWW-Authenticate: the app should log in and send the header.
        return HEADER
