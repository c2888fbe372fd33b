"""The logged-in user's phones: list, add one (verified by a call, like a login), remove one.

Each answers HTML to browsers and JSON to clients that send ``Accept: application/json``.
Adding goes through the same flow as a login, with the purpose "link": the same cost
limits, the same session binding, the same one-finisher race safety; and a link flow
can never be finished as a login, nor the reverse.

Adding and removing need a recent login (``guards/reauthentication.py``): a copied session
cookie alone changes nothing, and starts no billed call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .. import errors, flows
from ..errors import CallAuthRefusal
from ..flows import linking
from ..guards import devices, reauthentication
from ..models import CallAuthPhone, FlowPurpose, FlowStatus
from ..phones import format_phone, normalize_phone
from .negotiation import csrf_protect, endpoint, error_response, request_data, wants_json
from .presenters import FLOW_URLS, challenge_error, flow_payload, flow_problem, no_flow

logger = logging.getLogger("django_callauth")

PHONES_TEMPLATE = "callauth/phones.html"
#: A one-time notice for the phones page ("+7 900 … was added"), kept in the session across the redirect.
NOTICE_KEY = "_callauth_phones_notice"


def login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged-in users only: a JSON 401 for API clients, the login page for browsers."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if wants_json(request):
                return error_response(request, errors.LOGIN_REQUIRED)
            return redirect_to_login(request.get_full_path(), str(settings.LOGIN_URL))
        return view(request, *args, **kwargs)

    return wrapper


def recent_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A login within ``CALLAUTH_REAUTHENTICATION_TIMEOUT``, or ``reauthentication_required`` (401).

    Checked before the body is read: a refusal writes nothing, not even to the session,
    and asks no provider. The page it shows offers to log in again.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not reauthentication.recently_authenticated(request):
            logger.info("User %s: phones not changed, no recent login", request.user.pk)
            return error_response(
                request, errors.REAUTHENTICATION_REQUIRED, template=PHONES_TEMPLATE, context=_page(request)
            )
        return view(request, *args, **kwargs)

    return wrapper


def _phones_of(request: HttpRequest) -> list[CallAuthPhone]:
    user: Any = request.user  # logged in: every view here requires it
    return list(CallAuthPhone.objects.filter(user=user).order_by("created_at", "pk"))


def _phone_json(link: CallAuthPhone) -> dict[str, Any]:
    return {
        "id": link.pk,
        "phone": link.phone,
        "added_at": link.created_at.isoformat(),
        "last_login_at": link.last_login_at.isoformat() if link.last_login_at else None,
    }


def _page(request: HttpRequest, **context: Any) -> dict[str, Any]:
    links = _phones_of(request)
    return {
        "links": [(link, format_phone(link.phone)) for link in links],
        # Adding and removing are refused now: the page offers to log in again instead.
        "reauthenticate": not reauthentication.recently_authenticated(request),
        "phones_url": reverse("callauth:phones"),
        **context,
    }


def _done(request: HttpRequest, notice: str, payload: dict[str, Any], status: int = HTTPStatus.OK) -> HttpResponse:
    # Kept for JSON clients too: the page's script follows the redirect to the phones page.
    request.session[NOTICE_KEY] = notice
    if wants_json(request):
        return JsonResponse(payload, status=status)
    return redirect("callauth:phones")


@endpoint("GET")
@never_cache
@login_required
def phones(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"phones": [_phone_json(link) for link in _phones_of(request)]})
    return render(request, PHONES_TEMPLATE, _page(request, notice=request.session.pop(NOTICE_KEY, "")))


@sensitive_post_parameters("phone")
@endpoint("POST")
@csrf_protect
@transaction.non_atomic_requests
@login_required
@recent_login_required
def phone_add(request: HttpRequest) -> HttpResponse:
    data = request_data(request)
    if data is None:
        return error_response(request, errors.BODY_NOT_AN_OBJECT)
    raw_phone = data.get("phone")
    form = _page(request, callauth_phone=raw_phone if isinstance(raw_phone, str) else "")
    try:
        phone = normalize_phone(raw_phone)
        flow = flows.start_flow(request, phone, purpose=FlowPurpose.LINK)
    except CallAuthRefusal as exc:
        return error_response(request, exc.error, template=PHONES_TEMPLATE, context=form)
    if wants_json(request):
        return JsonResponse(flow_payload(request, flow), status=201)
    return redirect(FLOW_URLS[FlowPurpose.LINK]["challenge"])


@endpoint("POST")
@csrf_protect
@never_cache
@transaction.non_atomic_requests
@login_required
def link_complete(request: HttpRequest) -> HttpResponse:
    """Add the phone once the call is confirmed; never logs anyone in or out.

    No recent login is asked for here: ``phone_add`` asked for it when the flow started,
    and the flow cannot change its phone nor outlive its deadline and finishing window.
    Asking again would only refuse the owner who called a moment too late.
    """
    flow = flows.flow_from_session(request.session, FlowPurpose.LINK)
    if flow is None:
        return no_flow(request, FlowPurpose.LINK)
    flows.refresh_flow(flow, request=request, user_says_called=True)
    if flow.current_status() == FlowStatus.CONFIRMED:
        outcome = linking.link_phone(request, flow)
        if outcome is linking.LinkOutcome.NO_FLOW:
            return no_flow(request, FlowPurpose.LINK)
        if outcome is linking.LinkOutcome.LINKED:
            flows.forget_flow(request.session, FlowPurpose.LINK)
            notice = _("%(phone)s was added to your account.") % {"phone": format_phone(flow.phone)}
            response = _done(request, notice, {"phone": flow.phone, "redirect": reverse("callauth:phones")})
            devices.remember(request, response, flow.phone)  # this browser proved the phone: its own allowance
            return response
        flow.refresh_from_db()
    return challenge_error(request, flow, flow_problem(flow))


@endpoint("POST")
@csrf_protect
@transaction.non_atomic_requests
@login_required
@recent_login_required
def phone_remove(request: HttpRequest, link_id: int) -> HttpResponse:
    outcome, phone = linking.remove_phone(request, link_id)
    if outcome is linking.RemoveOutcome.NOT_FOUND:
        return error_response(request, errors.NO_SUCH_PHONE)
    if outcome is linking.RemoveOutcome.LAST_LOGIN_METHOD:
        return error_response(request, errors.LAST_LOGIN_METHOD, template=PHONES_TEMPLATE, context=_page(request))
    notice = _("%(phone)s was removed from your account.") % {"phone": format_phone(phone)}
    return _done(request, notice, {"removed": phone})
