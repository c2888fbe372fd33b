"""SimpleJWT for app clients: a JWT pair after a login by call.

Only this module imports SimpleJWT; the site's API authenticates with its
``JWTAuthentication`` and refreshes with its ``TokenRefreshView``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from ..web.app import SessionTokenStrategy


class JWTStrategy(SessionTokenStrategy):
    """``CALLAUTH_APP_TOKEN_STRATEGY``: ``{"access_token": ..., "refresh_token": ...}`` from SimpleJWT.

    The tokens follow ``SIMPLE_JWT`` (lifetimes, rotation, the blacklist app if installed).
    """

    def login_payload(self, request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
        # Imported here: SimpleJWT's token module reads its settings and the blacklist app at import.
        from rest_framework_simplejwt.tokens import RefreshToken

        refresh = RefreshToken.for_user(user)
        return {"access_token": str(refresh.access_token), "refresh_token": str(refresh)}
