"""A login by call handed to allauth, as allauth's own login by code does.

allauth's ``LoginCodeVerificationProcess.finish`` records the code as an authentication
method, then calls ``perform_login``: the login's stages (MFA, "trust this browser",
email or phone verification) run, and ``user_logged_in`` with the adapter's
``login``/``post_login`` follow once none is pending. The same here, for a proven call.
"""

from __future__ import annotations

from allauth.account.internal.flows.login import record_authentication
from allauth.account.utils import perform_login
from django.http import HttpRequest, HttpResponse

from django_callauth.models import CallAuthFlow
from django_callauth.types import User
from django_callauth.web.redirects import safe_next

#: The method allauth's session records (``account_authentication_methods``) name a call by.
METHOD = "phone_call"


def login_through_allauth(request: HttpRequest, flow: CallAuthFlow, user: User) -> HttpResponse:
    """Record the call, then log in through allauth: a pending stage answers its page instead.

    allauth's "recent authentication" (reauthentication), its audit signal
    ``authentication_step_completed`` and its MFA stage read the record made here.
    """
    record_authentication(request, user, method=METHOD, phone=flow.phone)
    # Without a next, allauth's rules choose where the login ends (its adapter's redirect).
    response: HttpResponse = perform_login(request, user, redirect_url=safe_next(request, flow.next_url) or None)
    return response
