"""A recent login: adding or removing a phone needs one (docs/security.rst, invariant 18).

A session cookie copied from a browser (malware, a shared computer, a leaked log) is a
login that never ends; without this, its holder could add his own phone and remove the
owner's, and own the account for good. So every login, by any backend and through any
login view, records when it happened in the session, and changing an account's phones
needs a login no older than ``CALLAUTH_REAUTHENTICATION_TIMEOUT``: proving it again means
logging in again, which the holder of a copied cookie cannot do.

The time is recorded by a receiver of Django's ``user_logged_in`` (connected in
``apps.py``), as django-allauth records its authentications, so a project's own login
view or allauth's count as much as a login by call.
"""

from __future__ import annotations

import math
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ..conf import app_settings

#: When the session last logged in: seconds since the epoch, as a number.
AUTHENTICATED_AT_KEY = "_callauth_authenticated_at"


def record_login(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """Receiver of ``user_logged_in``: this session has just proved who it is."""
    session = getattr(request, "session", None)
    if session is not None:  # login() with no request (a script, a test) has no session to mark
        session[AUTHENTICATED_AT_KEY] = timezone.now().timestamp()


def recently_authenticated(request: HttpRequest) -> bool:
    """Whether the session logged in within ``CALLAUTH_REAUTHENTICATION_TIMEOUT`` seconds.

    Only a number from the past counts: a value of another type, or a time to come, was not
    written by ``record_login`` (an old session's value, a clock turned back) and proves
    nothing.
    """
    at = request.session.get(AUTHENTICATED_AT_KEY)
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        return False
    age = timezone.now().timestamp() - at
    return 0 <= age < app_settings.REAUTHENTICATION_TIMEOUT
